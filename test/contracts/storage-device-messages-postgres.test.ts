import { PostgresAccountsStorage } from '../../src/storage/postgres/accounts.js';
import { PostgresDeviceMessagesStorage } from '../../src/storage/postgres/device-messages.js';
import { PostgresKeysStorage } from '../../src/storage/postgres/keys.js';
import { anotherNode, freshPostgres } from './postgres-fixture.js';
import { deviceMessagesStorageContract } from './storage-device-messages.contract.js';

deviceMessagesStorageContract('PostgreSQL', async () => {
  const db = await freshPostgres();
  return {
    deviceMessages: new PostgresDeviceMessagesStorage(db),
    accounts: new PostgresAccountsStorage(db),
    keys: new PostgresKeysStorage(db),
    // Another node: its own pool and group commit, so its units really race this one's.
    anotherDeviceMessages: async () => new PostgresDeviceMessagesStorage(await anotherNode(db)),
    close: async () => {},
  };
});
