import { SqliteAccountEventsStorage } from '../../src/storage/sqlite/account-events.js';
import { SqliteAdminStorage } from '../../src/storage/sqlite/admin.js';
import { memoryStore } from './sqlite-fixture.js';
import { accountsStorageContract } from './storage-accounts.contract.js';


accountsStorageContract('SQLite in memory', async () => {
  const store = memoryStore();
  const admin = new SqliteAdminStorage(store);
  return {
    accounts: admin,
    admin,
    events: new SqliteAccountEventsStorage(store),
    seedInvite: async (codeHash, maxUses, expiresAt) => store.invites.insert({ codeHash, codePrefix: 'TEST', now: 1, expiresAt, maxUses, note: '' }),
    // One database, one writer: another storage is another object on it.
    anotherAccounts: async () => new SqliteAdminStorage(store),
    close: async () => {
      store.db.close();
    },
  };
});
