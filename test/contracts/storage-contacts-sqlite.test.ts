import { SqliteAdminStorage } from '../../src/storage/sqlite/admin.js';
import { SqliteContactsStorage } from '../../src/storage/sqlite/contacts.js';
import { memoryStore } from './sqlite-fixture.js';
import { contactsStorageContract } from './storage-contacts.contract.js';

contactsStorageContract('SQLite in memory', async () => {
  const store = memoryStore();
  return { contacts: new SqliteContactsStorage(store), admin: new SqliteAdminStorage(store), close: async () => void store.db.close() };
});
