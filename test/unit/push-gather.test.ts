import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../../src/log.js';
import { PushDispatcher } from '../../src/push/dispatcher.js';
import { SqliteAdminStorage } from '../../src/storage/sqlite/admin.js';
import { SqlitePushQueueStorage, SqlitePushTokensStorage } from '../../src/storage/sqlite/push.js';
import type { PushQueueStorage } from '../../src/storage/ports/push.js';
import { memoryStore, seedThread } from '../contracts/sqlite-fixture.js';
import { seedUser } from '../contracts/storage-accounts.contract.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { RecordingProvider } from '../helpers/recording-provider.js';

const turns = async (count: number): Promise<void> => {
  for (let index = 0; index < count; index++) await new Promise((next) => setImmediate(next));
};

describe('PushDispatcher: gathering the wake-ups of a burst', () => {
  it('makes one pass for the messages stored within gatherMs, when the clock reaches it, and none before', async () => {
    const store = memoryStore();
    const admin = new SqliteAdminStorage(store);
    const clock = new FakeClock(5_000_000);
    const alice = await seedUser(admin, 'alice', 1);
    const bob = await seedUser(admin, 'bob', 1);
    await new SqlitePushTokensStorage(store).registerPushToken(bob.deviceIds[0] as number, { platform: 'fcm', token: 'fcm-bob', topic: null });
    const queue = new SqlitePushQueueStorage(store);
    let passes = 0;
    // Every pass starts with one expansion: counting them counts the passes.
    const storage: PushQueueStorage = Object.assign(Object.create(queue) as PushQueueStorage, {
      expandPending: (input: Parameters<PushQueueStorage['expandPending']>[0]) => {
        passes++;
        return queue.expandPending(input);
      },
    });
    const provider = new RecordingProvider();
    const dispatcher = new PushDispatcher({
      storage,
      clock,
      log: createLogger('silent'),
      providers: new Map([['fcm', provider] as const]),
      badge: async () => 1,
      settings: { preview: false, maxAgeMs: 86_400_000, maxAttempts: 3, retryBaseMs: 1_000, concurrency: 8, gatherMs: 50 },
    });
    const from = { userId: alice.userId, deviceId: alice.deviceIds[0] as number };
    for (let message = 0; message < 3; message++) {
      seedThread(store, [alice.userId, bob.userId], from, 1, clock.now());
      dispatcher.pushQueued();
    }
    await turns(10);
    assert.equal(passes, 0, 'no pass before the gathering wait ends');
    clock.advance(50);
    await provider.called(1);
    // (The send's completion wakes another pass, for the rows behind it: not counted here.)
    assert.equal(passes, 1, 'one pass sent the notification of the three messages');
    await dispatcher.stop();
  });
});
