import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { systemClock } from '../../src/clock.js';
import { createLogger } from '../../src/log.js';
import { RevocationWatcher } from '../../src/services/revocation-watcher.js';
import type { Revocation } from '../../src/services/types.js';
import { PostgresAccountEventsStorage } from '../../src/storage/postgres/account-events.js';
import type { PgDatabase } from '../../src/storage/postgres/database.js';
import { recordRevocationEvents } from '../../src/storage/postgres/revocation-events.js';
import { rawClient, seedDevice, seedUser, settledOrBlocked } from '../helpers/postgres-people.js';
import { anotherNode, freshPostgres } from './postgres-fixture.js';

/**
 * Account events on PostgreSQL, as the RevocationWatcher reads them: by id,
 * "after the last one seen". Revocations are written by other nodes and by the
 * admin CLI, each in its own transaction; ids drawn from a sequence would
 * commit out of order without migration 0003's lock, and the reader would
 * skip the late one. (The port's calls are also run by the accounts contract.)
 */
describe('PostgresAccountEventsStorage: events written by other nodes and processes', () => {
  const silent = createLogger('silent');

  async function world(db: PgDatabase) {
    const [ann, ben] = [await seedUser(db, 'ann'), await seedUser(db, 'ben')];
    return { ann, annPhone: await seedDevice(db, ann), ben, benPhone: await seedDevice(db, ben) };
  }

  function recorder(): { heard: Revocation[]; revoked(list: readonly Revocation[]): void } {
    const heard: Revocation[] = [];
    return { heard, revoked: (list) => void heard.push(...list) };
  }

  it('a writer draws its ids only after the writer before it committed: ids grow in commit order', async (t) => {
    const db = await freshPostgres();
    const { ann, annPhone, ben, benPhone } = await world(db);
    const [first, second] = [await rawClient(db), await rawClient(db)];
    t.after(() => Promise.all([first.end(), second.end()]));
    await first.query('BEGIN');
    await second.query('BEGIN');
    const [early] = await recordRevocationEvents(first, { userId: ann, deviceIds: [annPhone], reason: 'device_revoked', now: 1_000 });
    const late = recordRevocationEvents(second, { userId: ben, deviceIds: [benPhone], reason: 'device_revoked', now: 1_000 });
    assert.equal(await settledOrBlocked(db, late), 'blocked', 'the second writer waits for the first to finish');
    await first.query('COMMIT');
    const [later] = await late;
    await second.query('COMMIT');
    assert.ok(early && later && later.id > early.id, `the later commit has the bigger id (${early?.id}, ${later?.id})`);
  });

  it('the watcher of one node hears every revocation committed by others, whatever order their transactions ran in', async (t) => {
    const db = await freshPostgres();
    const { ann, annPhone, ben } = await world(db);
    const listener = recorder();
    const watcher = new RevocationWatcher({ events: new PostgresAccountEventsStorage(db), listener, log: silent, clock: systemClock, intervalMs: 60_000 });
    await watcher.start();
    t.after(() => watcher.stop());
    const [slow, quick] = [await rawClient(db), await rawClient(db)];
    t.after(() => Promise.all([slow.end(), quick.end()]));
    // The slow one (another node) records first and commits last; the quick one (the admin CLI) records and commits in between.
    await slow.query('BEGIN');
    await recordRevocationEvents(slow, { userId: ann, deviceIds: [annPhone], reason: 'device_revoked', now: 1_000 });
    await quick.query('BEGIN');
    const quickOne = recordRevocationEvents(quick, { userId: ben, deviceIds: null, reason: 'user_disabled', now: 1_000 }).then(async (events) => {
      await quick.query('COMMIT');
      return events;
    });
    await settledOrBlocked(db, quickOne);
    await watcher.poll();
    await slow.query('COMMIT');
    await quickOne;
    await watcher.poll();
    assert.deepEqual(
      listener.heard.map((revocation) => [revocation.userId, revocation.deviceId, revocation.reason]),
      [
        [ann, annPhone, 'device_revoked'],
        [ben, null, 'user_disabled'],
      ],
    );
  });

  it('tells whether anything was recorded since the last look, by another node or by this one', async () => {
    const db = await freshPostgres();
    const { ann, annPhone } = await world(db);
    const events = new PostgresAccountEventsStorage(db);
    await events.changedElsewhere();
    assert.equal(await events.changedElsewhere(), false, 'nothing since');
    const other = await anotherNode(db);
    await other.writes.submit((sql) => recordRevocationEvents(sql, { userId: ann, deviceIds: [annPhone], reason: 'device_revoked', now: 1_000 }));
    assert.equal(await events.changedElsewhere(), true);
    assert.equal(await events.changedElsewhere(), false, 'each change told once');
    assert.equal(await events.latestAccountEventId(), (await events.accountEventsAfter(0, 10)).at(-1)?.id);
  });

  it('records one event per device in the order given, and drops those past the retention', async () => {
    const db = await freshPostgres();
    const { ann, annPhone } = await world(db);
    const secondPhone = await seedDevice(db, ann);
    await db.writes.submit((sql) => recordRevocationEvents(sql, { userId: ann, deviceIds: null, reason: 'password_changed', now: 1_000 }));
    const recorded = await db.writes.submit((sql) => recordRevocationEvents(sql, { userId: ann, deviceIds: [secondPhone, annPhone], reason: 'device_revoked', now: 90_000_000 }));
    assert.deepEqual(recorded.map((event) => event.deviceId), [secondPhone, annPhone]);
    assert.deepEqual(await new PostgresAccountEventsStorage(db).accountEventsAfter(0, 10), recorded, 'the day-old one is gone');
  });
});
