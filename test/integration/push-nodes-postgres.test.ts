import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createLogger } from '../../src/log.js';
import { CLAIM_LEASE_MS, PushDispatcher } from '../../src/push/dispatcher.js';
import type { Notification, PushOutcome, PushProvider, PushTarget } from '../../src/push/types.js';
import { PostgresAdminStorage } from '../../src/storage/postgres/admin.js';
import type { PgDatabase } from '../../src/storage/postgres/database.js';
import { PostgresPushQueueStorage, PostgresPushTokensStorage } from '../../src/storage/postgres/push.js';
import { anotherNode, freshPostgres } from '../contracts/postgres-fixture.js';
import { seedUser } from '../contracts/storage-accounts.contract.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { seedThreadRows } from '../helpers/postgres-seed.js';

const START = 5_000_000;

/** Answers `sent` a turn later (so that nodes' sends overlap), counting each token it was asked for. */
class CountingProvider implements PushProvider {
  readonly platform = 'fcm' as const;
  readonly sends = new Map<string, number>();
  private waiters: Array<{ total: number; done: () => void }> = [];

  async send(target: PushTarget, _notification: Notification): Promise<PushOutcome> {
    this.sends.set(target.token, (this.sends.get(target.token) ?? 0) + 1);
    const total = this.total;
    for (const waiter of this.waiters.filter((w) => w.total <= total)) waiter.done();
    await new Promise((next) => setImmediate(next));
    return { kind: 'sent', id: undefined };
  }

  async close(): Promise<void> {}

  get total(): number {
    return [...this.sends.values()].reduce((sum, n) => sum + n, 0);
  }

  reached(total: number): Promise<void> {
    if (this.total >= total) return Promise.resolve();
    return new Promise((done) => this.waiters.push({ total, done }));
  }
}

/** Bob's `devices` devices have a token each and a message from alice waiting: a notification per device, once expanded. */
async function queued(db: PgDatabase, devices: number): Promise<void> {
  const admin = new PostgresAdminStorage(db);
  const alice = await seedUser(admin, 'alice', 1);
  const bob = await seedUser(admin, 'bob', devices);
  const tokens = new PostgresPushTokensStorage(db);
  for (const deviceId of bob.deviceIds) await tokens.registerPushToken(deviceId, { platform: 'fcm', token: `token-${deviceId}`, topic: null });
  await seedThreadRows(db, [alice.userId, bob.userId], { userId: alice.userId, deviceId: alice.deviceIds[0] as number }, 1, START);
}

function dispatcher(db: PgDatabase, clock: FakeClock, provider: PushProvider): PushDispatcher {
  return new PushDispatcher({
    storage: new PostgresPushQueueStorage(db),
    clock,
    log: createLogger('silent'),
    providers: new Map([['fcm', provider] as const]),
    badge: async () => 0,
    settings: { preview: false, maxAgeMs: 86_400_000, maxAttempts: 3, retryBaseMs: 1_000, concurrency: 3 },
  });
}

/** Checks until `check` holds, each check a PostgreSQL round trip (so the bound is round trips, not time); never sleeps. */
async function turnsUntil(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let turn = 0; turn < 5_000; turn++) {
    if (await check()) return;
    await new Promise((next) => setImmediate(next));
  }
  assert.fail(`never happened: ${what}`);
}

describe('push dispatchers of several nodes on one PostgreSQL queue', () => {
  const running: PushDispatcher[] = [];
  after(async () => {
    for (const each of running) await each.stop();
  });

  it('send each notification once between them', async () => {
    const db = await freshPostgres();
    await queued(db, 20);
    const provider = new CountingProvider();
    const clock = new FakeClock(START);
    const nodes = [dispatcher(db, clock, provider), dispatcher(await anotherNode(db), clock, provider)];
    running.push(...nodes);
    for (const node of nodes) node.start();
    const admin = new PostgresAdminStorage(db);
    await turnsUntil(async () => (await admin.pushCounts()).sent === 20, 'twenty notifications sent');
    assert.equal(provider.sends.size, 20);
    assert.deepEqual([...provider.sends.values()].filter((n) => n !== 1), [], 'no token twice');
    assert.equal((await admin.pushCounts()).queued, 0);
  });

  it("take over a dead node's claims once their lease runs out, not before", async () => {
    const db = await freshPostgres();
    await queued(db, 2);
    const dead = new PostgresPushQueueStorage(await anotherNode(db));
    await dead.expandPending({ limit: 10, now: START, platforms: { apns: false, fcm: true } });
    assert.equal((await dead.claimDuePushes({ now: START, limit: 10, leaseMs: CLAIM_LEASE_MS })).length, 2, 'claimed, then the node died');
    const provider = new CountingProvider();
    const clock = new FakeClock(START);
    const survivor = dispatcher(db, clock, provider);
    running.push(survivor);
    survivor.start();
    // Its first pass finds only claims held by the dead node (PostgreSQL round trips: an event, not a count of turns).
    await clock.timerWaiting();
    clock.advance(CLAIM_LEASE_MS - 1);
    assert.equal(clock.pending, 1, 'the wake-up has not fired: it is at the end of the lease');
    assert.equal(provider.total, 0, 'nothing sent while the lease runs');
    clock.advance(1);
    await provider.reached(2);
    assert.deepEqual([...provider.sends.values()], [1, 1]);
  });
});
