import { PostgresPresenceStorage } from '../../src/storage/postgres/presence.js';
import { markDeleted, seedContact, seedThread, seedUser } from '../helpers/postgres-people.js';
import { freshPostgres } from './postgres-fixture.js';
import { type PresenceFixture, presenceStorageContract } from './storage-presence.contract.js';

presenceStorageContract('PostgreSQL', async (): Promise<PresenceFixture> => {
  const db = await freshPostgres();
  return {
    storage: new PostgresPresenceStorage(db),
    user: (name) => seedUser(db, name),
    addContact: (userId, contactId) => seedContact(db, userId, contactId),
    thread: (userIds) => seedThread(db, userIds),
    deleteUser: (userId) => markDeleted(db, userId),
    // The fixture closes every pool after the file's tests.
    close: async () => {},
  };
});
