import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../../src/log.js';
import { PushDispatcher } from '../../src/push/dispatcher.js';
import { SqliteAdminStorage } from '../../src/storage/sqlite/admin.js';
import { SqlitePushQueueStorage, SqlitePushTokensStorage } from '../../src/storage/sqlite/push.js';
import { memoryStore, seedThread } from '../contracts/sqlite-fixture.js';
import { seedUser } from '../contracts/storage-accounts.contract.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { RecordingProvider } from '../helpers/recording-provider.js';

describe('PushDispatcher: the badge', () => {
  it("reads a user's badge once for the notifications of one pass (three devices, two threads), and again in a later pass", async () => {
    const store = memoryStore();
    const admin = new SqliteAdminStorage(store);
    const clock = new FakeClock(5_000_000);
    const alice = await seedUser(admin, 'alice', 1);
    const bob = await seedUser(admin, 'bob', 3);
    const tokens = new SqlitePushTokensStorage(store);
    for (const deviceId of bob.deviceIds) await tokens.registerPushToken(deviceId, { platform: 'fcm', token: `fcm-${deviceId}`, topic: null });
    const from = { userId: alice.userId, deviceId: alice.deviceIds[0] as number };
    seedThread(store, [alice.userId, bob.userId], from, 1, clock.now());
    seedThread(store, [alice.userId, bob.userId], from, 2, clock.now());
    const provider = new RecordingProvider();
    const reads: number[] = [];
    const dispatcher = new PushDispatcher({
      storage: new SqlitePushQueueStorage(store),
      clock,
      log: createLogger('silent'),
      providers: new Map([['fcm', provider] as const]),
      badge: async (userId) => (reads.push(userId), 3),
      settings: { preview: false, maxAgeMs: 86_400_000, maxAttempts: 3, retryBaseMs: 1_000, concurrency: 8 },
    });
    dispatcher.start();
    await provider.called(6);
    assert.deepEqual(provider.sent.map((notification) => notification.badge), [3, 3, 3, 3, 3, 3]);
    assert.deepEqual(reads, [bob.userId], 'one read for six notifications');
    seedThread(store, [alice.userId, bob.userId], from, 1, clock.now());
    dispatcher.pushQueued();
    await provider.called(9);
    assert.deepEqual(reads, [bob.userId, bob.userId], 'a new pass reads it again (it may have changed)');
    await dispatcher.stop();
  });
});
