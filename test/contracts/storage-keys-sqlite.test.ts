import { SqliteAccountsStorage } from '../../src/storage/sqlite/accounts.js';
import { SqliteKeysStorage } from '../../src/storage/sqlite/keys.js';
import { memoryStore, seedThread } from './sqlite-fixture.js';
import { keysStorageContract } from './storage-keys.contract.js';

keysStorageContract('SQLite in memory', async () => {
  const store = memoryStore();
  return {
    keys: new SqliteKeysStorage(store),
    accounts: new SqliteAccountsStorage(store),
    seedSharedThread: async (userIds) => void seedThread(store, userIds, { userId: userIds[0] as number, deviceId: 0 }, 0, 1),
    // One database, one writer: another storage is another object on it.
    anotherKeys: async () => new SqliteKeysStorage(store),
    close: async () => {
      store.db.close();
    },
  };
});
