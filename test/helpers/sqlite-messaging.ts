import { SqliteHistoryStorage } from '../../src/storage/sqlite/history.js';
import { SqliteMessagingStorage } from '../../src/storage/sqlite/messaging.js';
import { SqliteThreadStorage } from '../../src/storage/sqlite/threads.js';
import { migrate, openDatabase } from '../../src/storage/database.js';
import { Store } from '../../src/storage/store.js';
import type { FixtureSettings, MessagingFixture } from '../contracts/storage-messaging.contract.js';

/** The ports over a fresh SQLite database in memory, seeded through the repositories. */
export async function openSqliteMessaging(settings: FixtureSettings): Promise<MessagingFixture & { store: Store }> {
  const db = openDatabase({ file: ':memory:', synchronous: 'normal', busyTimeoutMs: 1000 });
  migrate(db);
  const store = new Store(db);
  const append = { maxMessages: 1000, readDiffusionAbove: settings.readDiffusionAbove, push: { apns: false, fcm: false } };
  let devices = 0;
  return {
    store,
    messaging: new SqliteMessagingStorage(store, append),
    history: new SqliteHistoryStorage(store),
    threads: new SqliteThreadStorage(store, append),
    user: async (name) => store.users.insert({ username: name, displayName: name, passwordHash: 'x', now: 1 }) as number,
    device: async (userId, options = {}) => {
      const id = store.devices.insert({ userId, name: 'd', platform: 'cli', tokenHash: Buffer.from(`t${++devices}`), now: 1 });
      if (options.approved) store.keys.publish(id, { encKey: `e${id}`, signKey: `s${id}`, counter: 1, signature: 'sig', accountSignature: 'cert' }, 1);
      return id;
    },
    revokeDevice: async (deviceId) => {
      store.devices.revoke(deviceId, 2);
    },
    goLive: async (deviceId) => {
      store.inbox.goLive(deviceId);
    },
    inbox: async (deviceId) => store.inbox.pending(deviceId, 0, 10_000).map((row) => row.id),
    overflow: async (deviceId) => {
      store.inbox.overflow(deviceId);
    },
    overflowed: async (deviceId) => store.inbox.overflowed(deviceId),
    close: async () => {
      db.close();
    },
  };
}
