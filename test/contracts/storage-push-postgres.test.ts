import { PostgresAdminStorage } from '../../src/storage/postgres/admin.js';
import { PostgresDeliveryStorage } from '../../src/storage/postgres/delivery.js';
import { PostgresMessagingStorage } from '../../src/storage/postgres/messaging.js';
import { PostgresPushQueueStorage, PostgresPushTokensStorage } from '../../src/storage/postgres/push.js';
import { muteThread, seedThreadRows } from '../helpers/postgres-seed.js';
import { anotherNode, freshPostgres } from './postgres-fixture.js';
import { pushQueueContract } from './storage-push-queue.contract.js';
import { type PushFixture, pushStorageContract } from './storage-push.contract.js';

const open = async (): Promise<PushFixture> => {
  const db = await freshPostgres();
  const admin = new PostgresAdminStorage(db);
  return {
    tokens: new PostgresPushTokensStorage(db),
    queue: new PostgresPushQueueStorage(db),
    accounts: admin,
    admin,
    seedThread: (members, sender, messages, now) => seedThreadRows(db, members, sender, messages, now),
    mute: (threadId, userId) => muteThread(db, threadId, userId),
    messaging: new PostgresMessagingStorage(db, { maxMessages: 1000, readDiffusionAbove: 50, push: { apns: true, fcm: true } }),
    delivery: new PostgresDeliveryStorage(db),
    // Another node: its own pool and group commit, so its claims really race this one's.
    anotherQueue: async () => new PostgresPushQueueStorage(await anotherNode(db)),
    // The fixture closes every pool after the file's tests.
    close: async () => {},
  };
};

pushStorageContract('PostgreSQL', open);
pushQueueContract('PostgreSQL', open);
