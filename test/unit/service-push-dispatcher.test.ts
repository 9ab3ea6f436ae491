import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../../src/log.js';
import { PushDispatcher } from '../../src/push/dispatcher.js';
import type { Notification, PushOutcome, PushProvider } from '../../src/push/types.js';
import { SqliteAdminStorage } from '../../src/storage/sqlite/admin.js';
import { SqlitePushQueueStorage, SqlitePushTokensStorage } from '../../src/storage/sqlite/push.js';
import { memoryStore, seedThread } from '../contracts/sqlite-fixture.js';
import { seedUser } from '../contracts/storage-accounts.contract.js';
import { FakeClock } from '../helpers/fake-clock.js';

/** A provider that answers with the outcomes it is given, in order, and lets the test wait for its n-th call. */
class ScriptedProvider implements PushProvider {
  readonly platform = 'apns' as const;
  readonly sent: Notification[] = [];
  private waiters: Array<{ count: number; done: () => void }> = [];
  constructor(private readonly outcomes: PushOutcome[]) {}

  async send(_target: unknown, notification: Notification): Promise<PushOutcome> {
    this.sent.push(notification);
    for (const waiter of this.waiters.filter((w) => w.count <= this.sent.length)) waiter.done();
    return this.outcomes.shift() ?? { kind: 'sent', id: undefined };
  }

  async close(): Promise<void> {}

  called(count: number): Promise<void> {
    if (this.sent.length >= count) return Promise.resolve();
    return new Promise((done) => this.waiters.push({ count, done }));
  }
}

/** Turns of the event loop until `check` holds (each write commits in a later turn); fails after a bound, never sleeps. */
async function turnsUntil(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let turn = 0; turn < 1_000; turn++) {
    if (await check()) return;
    await new Promise((next) => setImmediate(next));
  }
  assert.fail(`never happened: ${what}`);
}

async function setUp(outcomes: PushOutcome[]) {
  const store = memoryStore();
  const admin = new SqliteAdminStorage(store);
  const clock = new FakeClock(5_000_000);
  const alice = await seedUser(admin, 'alice', 1);
  const bob = await seedUser(admin, 'bob', 1);
  await new SqlitePushTokensStorage(store).registerPushToken(bob.deviceIds[0] as number, { platform: 'apns', token: 'a'.repeat(64), topic: null });
  seedThread(store, [alice.userId, bob.userId], { userId: alice.userId, deviceId: alice.deviceIds[0] as number }, 1, clock.now());
  const provider = new ScriptedProvider(outcomes);
  const badges: number[] = [];
  const dispatcher = new PushDispatcher({
    storage: new SqlitePushQueueStorage(store),
    clock,
    log: createLogger('silent'),
    providers: new Map([['apns', provider] as const]),
    badge: async (userId) => (badges.push(userId), 7),
    settings: { preview: false, maxAgeMs: 86_400_000, maxAttempts: 3, retryBaseMs: 1_000, concurrency: 2 },
  });
  return { store, admin, clock, provider, dispatcher, bob, badges };
}

describe('PushDispatcher on the fake clock', () => {
  it('sends a queued notification with the badge it awaits, and settles it once sent', async () => {
    const { admin, provider, dispatcher, bob, badges } = await setUp([]);
    dispatcher.start();
    await provider.called(1);
    assert.equal(provider.sent[0]?.badge, 7);
    assert.deepEqual(badges, [bob.userId]);
    await turnsUntil(async () => (await admin.pushCounts()).sent === 1, 'the sent counter');
    assert.equal((await admin.pushCounts()).queued, 0);
    await dispatcher.stop();
  });

  it('retries a failure only when the clock reaches the retry time, then gives up after max_attempts', async () => {
    const { admin, clock, provider, dispatcher } = await setUp([
      { kind: 'retry', reason: '503' },
      { kind: 'retry', reason: '503' },
      { kind: 'retry', reason: '503' },
    ]);
    dispatcher.start();
    await provider.called(1);
    await turnsUntil(async () => clock.pending > 0, 'the retry timer');
    clock.advance(499);
    await new Promise((next) => setImmediate(next));
    assert.equal(provider.sent.length, 1, 'not before half the base delay (jitter is between half and all of it)');
    clock.advance(501);
    await provider.called(2);
    await turnsUntil(async () => clock.pending > 0, 'the second retry timer');
    clock.advance(2_000);
    await provider.called(3);
    await turnsUntil(async () => (await admin.pushCounts()).failed === 1, 'given up and counted failed');
    assert.deepEqual([(await admin.pushCounts()).queued, provider.sent.length], [0, 3]);
    await dispatcher.stop();
  });

  it('removes a dead token and sends nothing more to it', async () => {
    const { admin, provider, dispatcher, bob, store } = await setUp([{ kind: 'dead_token', reason: 'Unregistered' }]);
    dispatcher.start();
    await provider.called(1);
    await turnsUntil(async () => (await admin.pushCounts()).droppedTokens === 1, 'the token dropped');
    assert.equal(await new SqlitePushTokensStorage(store).pushRegistration(bob.deviceIds[0] as number), undefined);
    await dispatcher.stop();
  });
});
