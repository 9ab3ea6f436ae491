import { PostgresContactsStorage } from '../../src/storage/postgres/contacts.js';
import type { PgDatabase } from '../../src/storage/postgres/database.js';
import { markDeleted, seedDevice, seedUser } from '../helpers/postgres-people.js';
import { freshPostgres } from './postgres-fixture.js';
import { type ContactsFixture, contactsStorageContract } from './storage-contacts.contract.js';

/**
 * The three calls of AccountsStorage/AdminStorage the contract seeds with, in
 * SQL: PostgresAdminStorage is built beside this (another branch of the
 * issue); once both are in, it takes this stand-in's place.
 */
function seeding(db: PgDatabase): ContactsFixture['admin'] {
  const standIn = {
    createUser: async (input: { username: string }) => ({ kind: 'created' as const, userId: await seedUser(db, input.username), inviteId: undefined }),
    addDevice: async (input: { userId: number }) => ({ kind: 'added' as const, deviceId: await seedDevice(db, input.userId) }),
    deleteUser: async (input: { userId: number }) => {
      await markDeleted(db, input.userId);
      return { deviceIds: [], events: [] };
    },
  };
  return standIn as unknown as ContactsFixture['admin'];
}

contactsStorageContract('PostgreSQL', async () => {
  const db = await freshPostgres();
  // The fixture closes every pool after the file's tests.
  return { contacts: new PostgresContactsStorage(db), admin: seeding(db), close: async () => {} };
});
