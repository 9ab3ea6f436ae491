import { SqliteAccountsStorage } from '../../src/storage/sqlite/accounts.js';
import { SqliteDeviceMessagesStorage } from '../../src/storage/sqlite/device-messages.js';
import { SqliteKeysStorage } from '../../src/storage/sqlite/keys.js';
import { memoryStore } from './sqlite-fixture.js';
import { deviceMessagesStorageContract } from './storage-device-messages.contract.js';

deviceMessagesStorageContract('SQLite in memory', async () => {
  const store = memoryStore();
  return {
    deviceMessages: new SqliteDeviceMessagesStorage(store),
    accounts: new SqliteAccountsStorage(store),
    keys: new SqliteKeysStorage(store),
    // One database, one writer: another storage is another object on it.
    anotherDeviceMessages: async () => new SqliteDeviceMessagesStorage(store),
    close: async () => {
      store.db.close();
    },
  };
});
