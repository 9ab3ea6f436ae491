import { SqliteAdminStorage } from '../../src/storage/sqlite/admin.js';
import { SqliteDeliveryStorage } from '../../src/storage/sqlite/delivery.js';
import { SqliteMessagingStorage } from '../../src/storage/sqlite/messaging.js';
import { SqlitePushQueueStorage, SqlitePushTokensStorage } from '../../src/storage/sqlite/push.js';
import { memoryStore, seedThread } from './sqlite-fixture.js';
import { pushQueueContract } from './storage-push-queue.contract.js';
import { type PushFixture, pushStorageContract } from './storage-push.contract.js';

const open = async (): Promise<PushFixture> => {
  const store = memoryStore();
  const admin = new SqliteAdminStorage(store);
  return {
    tokens: new SqlitePushTokensStorage(store),
    queue: new SqlitePushQueueStorage(store),
    accounts: admin,
    admin,
    seedThread: async (members, sender, messages, now) => seedThread(store, members, sender, messages, now),
    mute: async (threadId, userId) => store.threads.setSettings(threadId, userId, true, null),
    messaging: new SqliteMessagingStorage(store, { maxMessages: 1000, readDiffusionAbove: 50, push: { apns: true, fcm: true } }),
    delivery: new SqliteDeliveryStorage(store),
    // One database, one writer: another claimant is another storage object on it.
    anotherQueue: async () => new SqlitePushQueueStorage(store, { claimant: 'another' }),
    close: async () => {
      store.db.close();
    },
  };
};

pushStorageContract('SQLite in memory', open);
pushQueueContract('SQLite in memory', open);
