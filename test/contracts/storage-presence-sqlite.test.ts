import { migrate, openDatabase } from '../../src/storage/database.js';
import { SqlitePresenceStorage } from '../../src/storage/sqlite/presence.js';
import { Store } from '../../src/storage/store.js';
import { type PresenceFixture, presenceStorageContract } from './storage-presence.contract.js';

presenceStorageContract('SQLite', async (): Promise<PresenceFixture> => {
  const db = openDatabase({ file: ':memory:', synchronous: 'full', busyTimeoutMs: 1000 });
  migrate(db);
  const store = new Store(db);
  return {
    storage: new SqlitePresenceStorage(store),
    user: async (name) => store.users.insert({ username: name, displayName: name, passwordHash: 'x', now: 1 }) as number,
    addContact: async (userId, contactId) => {
      store.contacts.add(userId, contactId, 1);
    },
    thread: async (userIds) =>
      store.transaction(() => {
        const threadId = store.threads.insert('group', 'test', null, userIds[0] as number, 1);
        for (const userId of userIds) store.threads.addMember(threadId, userId, 'member', 0, 1);
        return threadId;
      }),
    deleteUser: async (userId) => {
      store.users.markDeleted(userId, 2);
    },
    close: async () => {
      db.close();
    },
  };
});
