import { join } from 'node:path';
import { type Db, migrate, openDatabase } from '../../src/storage/database.js';
import { SqliteDeliveryStorage } from '../../src/storage/sqlite/delivery.js';
import { Store } from '../../src/storage/store.js';
import { tempDir } from '../helpers/tmp.js';
import { type DeliveryFixture, deliveryStorageContract } from './storage-delivery.contract.js';

// A file, not ':memory:': another node's storage is a second connection to the same database.
const open = (file: string): Db => openDatabase({ file, synchronous: 'full', busyTimeoutMs: 1000 });

deliveryStorageContract('SQLite', async (): Promise<DeliveryFixture> => {
  const file = join(tempDir(), 'chatd.db');
  const db = open(file);
  const others: Db[] = [];
  migrate(db);
  const store = new Store(db);
  let devices = 0;
  return {
    storage: new SqliteDeliveryStorage(store),
    user: async (name) => store.users.insert({ username: name, displayName: name, passwordHash: 'x', now: 1 }) as number,
    device: async (userId) => store.devices.insert({ userId, name: 'phone', platform: 'cli', tokenHash: Buffer.from(`token${devices++}`), now: 1 }),
    thread: async (userIds) =>
      store.transaction(() => {
        const threadId = store.threads.insert('group', 'test', null, userIds[0] as number, 1);
        for (const userId of userIds) store.threads.addMember(threadId, userId, 'member', 0, 1);
        return threadId;
      }),
    // What the message path's unit does for inboxes (no push rows: the contract does not look at them).
    send: (threadId, senderUserId, senderDeviceId, now) =>
      store.batcher.submit(() => {
        const seq = (store.threads.findById(threadId)?.last_seq ?? 0) + 1;
        const id = store.messages.insert({ threadId, seq, senderUserId, senderDeviceId, clientMsgId: `m${seq}`, kind: 'text', body: '{"text":"hi"}', now }) as number;
        store.threads.setLastSeq(threadId, seq, now);
        for (const deviceId of store.inbox.add({ id, thread_id: threadId, seq, sender_device_id: senderDeviceId, created_at: now }, 1_000)) store.inbox.overflow(deviceId);
        return { id, seq };
      }),
    acknowledge: (deviceId, threadId, seq) =>
      store.batcher.submit(() => {
        store.cursors.advance(deviceId, threadId, seq);
        store.inbox.acknowledge(deviceId, threadId, seq);
      }),
    anotherNode: async () => {
      const other = open(file);
      others.push(other);
      return new SqliteDeliveryStorage(new Store(other));
    },
    close: async () => {
      for (const other of others) other.close();
      db.close();
    },
  };
});
