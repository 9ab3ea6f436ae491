import { PostgresAccountsStorage } from '../../src/storage/postgres/accounts.js';
import { PostgresKeysStorage } from '../../src/storage/postgres/keys.js';
import { seedThreadRows } from '../helpers/postgres-seed.js';
import { anotherNode, freshPostgres } from './postgres-fixture.js';
import { keysStorageContract } from './storage-keys.contract.js';

keysStorageContract('PostgreSQL', async () => {
  const db = await freshPostgres();
  return {
    keys: new PostgresKeysStorage(db),
    accounts: new PostgresAccountsStorage(db),
    seedSharedThread: async (userIds) => void (await seedThreadRows(db, userIds, { userId: userIds[0] as number, deviceId: 0 }, 0, 1)),
    // Another node: its own pool and group commit, so its units really race this one's.
    anotherKeys: async () => new PostgresKeysStorage(await anotherNode(db)),
    close: async () => {},
  };
});
