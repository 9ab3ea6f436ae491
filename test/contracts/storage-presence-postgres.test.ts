import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PostgresPresenceStorage } from '../../src/storage/postgres/presence.js';
import { markDeleted, seedContact, seedThread, seedUser } from '../helpers/postgres-people.js';
import { anotherNode, freshPostgres } from './postgres-fixture.js';
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

describe('PostgresPresenceStorage between nodes', () => {
  it('a last-active time never moves back: two nodes holding connections of one user report in any order', async () => {
    const db = await freshPostgres();
    const [user, viewer] = [await seedUser(db, 'u'), await seedUser(db, 'v')];
    const [here, there] = [new PostgresPresenceStorage(db), new PostgresPresenceStorage(await anotherNode(db))];
    await here.setLastActive(user, 50_000);
    await there.setLastActive(user, 42_000);
    assert.equal((await there.facts(viewer, [user]))[0]?.lastActiveAt, 50_000);
    await there.setLastActive(user, 60_000);
    assert.equal((await here.facts(viewer, [user]))[0]?.lastActiveAt, 60_000);
  });
});
