import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PgDatabase } from '../../src/storage/postgres/database.js';
import { PostgresDeliveryStorage } from '../../src/storage/postgres/delivery.js';
import type { OfflineRules } from '../../src/storage/ports/delivery.js';
import { acknowledge, rawClient, seedDevice, seedThread, seedUser, settledOrBlocked, storeMessage } from '../helpers/postgres-people.js';
import { anotherNode, freshPostgres } from './postgres-fixture.js';
import { type DeliveryFixture, deliveryStorageContract } from './storage-delivery.contract.js';

function fixture(db: PgDatabase): DeliveryFixture {
  return {
    storage: new PostgresDeliveryStorage(db),
    user: (name) => seedUser(db, name),
    device: (userId) => seedDevice(db, userId),
    thread: (userIds) => seedThread(db, userIds),
    send: (threadId, senderUserId, senderDeviceId, now) => db.writes.submit((sql) => storeMessage(sql, { threadId, senderUserId, senderDeviceId, now })),
    acknowledge: (deviceId, threadId, seq) => acknowledge(db, deviceId, threadId, seq),
    anotherNode: async () => new PostgresDeliveryStorage(await anotherNode(db)),
    // The fixture closes every pool after the file's tests.
    close: async () => {},
  };
}

deliveryStorageContract('PostgreSQL', async () => fixture(await freshPostgres()));

const rules: OfflineRules = { readDiffusionAbove: 100, maxMessages: 1_000, push: { apns: false, fcm: false }, now: 5_000 };

/**
 * Ids are not in commit order on PostgreSQL, and another node's message may be
 * half-written (its id taken, its inbox rows not yet) while a device goes live
 * or offline: these drive such a message by hand, on a connection of its own.
 */
describe('PostgresDeliveryStorage and messages written at the same time on another node', () => {
  async function world() {
    const db = await freshPostgres();
    const f = fixture(db);
    const [alice, bob] = [await f.user('alice'), await f.user('bob')];
    const [alicePhone, bobPhone] = [await f.device(alice), await f.device(bob)];
    const thread = await f.thread([alice, bob]);
    const other = await f.thread([alice, bob]);
    return { db, f, alice, alicePhone, bobPhone, thread, other };
  }

  it('going live waits for a message under way in one of its threads: one whose id is below the mark still gets its inbox row', async (t) => {
    const { db, f, alice, alicePhone, bobPhone, thread, other } = await world();
    const client = await rawClient(db);
    t.after(() => client.end());
    await client.query('BEGIN');
    let fanIn!: () => void;
    const halfWritten = storeMessage(client, { threadId: thread, senderUserId: alice, senderDeviceId: alicePhone, now: 1_000 }, () => new Promise<void>((resolve) => (fanIn = resolve)));
    await until(() => fanIn !== undefined);
    // A later message, committed first: the newest id is now above the one under way.
    const later = await f.send(other, alice, alicePhone, 1_001);
    const live = f.storage.goLive(bobPhone);
    assert.equal(await settledOrBlocked(db, live), 'blocked', 'going live waits for the thread the message holds');
    fanIn();
    const early = await halfWritten;
    await client.query('COMMIT');
    await live;
    assert.ok(early.id < later.id, 'the message under way took the smaller id');
    await f.storage.goOffline(bobPhone, rules);
    assert.deepEqual((await f.storage.inboxPage(bobPhone, 0, 10)).messages.map((message) => message.id).sort((a, b) => a - b), [early.id, later.id]);
    assert.equal(await deadlocks(db), 0, 'the handover locks in the order the message path does: no deadlock (one would be retried after a second)');
  });

  it('going offline waits for a message under way that skipped the live device: the backfill then has it', async (t) => {
    const { db, f, alice, alicePhone, bobPhone, thread } = await world();
    await f.storage.goLive(bobPhone);
    const client = await rawClient(db);
    t.after(() => client.end());
    await client.query('BEGIN');
    // Written while the device is live: no inbox row for it.
    const message = await storeMessage(client, { threadId: thread, senderUserId: alice, senderDeviceId: alicePhone, now: 1_000 });
    const offline = f.storage.goOffline(bobPhone, rules);
    assert.equal(await settledOrBlocked(db, offline), 'blocked', 'the handover waits for the thread the message holds');
    await client.query('COMMIT');
    assert.equal((await offline).wasLive, true);
    assert.deepEqual((await f.storage.inboxPage(bobPhone, 0, 10)).messages.map((row) => row.id), [message.id]);
    assert.equal(await deadlocks(db), 0);
  });
});

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}

async function deadlocks(db: PgDatabase): Promise<number> {
  const { rows } = await db.read.query<{ deadlocks: number }>('SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()');
  return rows[0]?.deadlocks ?? 0;
}
