import { checkpoint } from '../database.js';
import type { Storage } from '../ports/storage.js';
import type { Store } from '../store.js';
import { SqliteAccountEventsStorage } from './account-events.js';
import { SqliteAdminStorage } from './admin.js';
import { SqliteAttachmentStorage } from './attachments.js';
import type { AppendSettings } from './append.js';
import { SqliteContactsStorage } from './contacts.js';
import { SqliteDeliveryStorage } from './delivery.js';
import { SqliteDeviceMessagesStorage } from './device-messages.js';
import { SqliteHistoryStorage } from './history.js';
import { SqliteKeysStorage } from './keys.js';
import { SqliteMessagingStorage } from './messaging.js';
import { SqlitePresenceStorage } from './presence.js';
import { SqlitePushQueueStorage, SqlitePushTokensStorage } from './push.js';
import { SqliteSearchStorage } from './search.js';
import { SqliteThreadStorage } from './threads.js';

/**
 * Every port on one SQLite database (its Store: the repositories and the one
 * WriteBatcher all the units of work share, so that one turn's writes are one
 * commit). `settings`: what storing a message needs to know (inbox bound,
 * read diffusion, the push providers configured).
 */
export function sqliteStorage(store: Store, settings: AppendSettings): Storage {
  // One object serves both: the admin's storage is the accounts' storage plus the admin's own.
  const admin = new SqliteAdminStorage(store);
  return {
    accounts: admin,
    admin,
    accountEvents: new SqliteAccountEventsStorage(store),
    messaging: new SqliteMessagingStorage(store, settings),
    history: new SqliteHistoryStorage(store),
    threads: new SqliteThreadStorage(store, settings),
    delivery: new SqliteDeliveryStorage(store),
    presence: new SqlitePresenceStorage(store),
    contacts: new SqliteContactsStorage(store),
    keys: new SqliteKeysStorage(store),
    deviceMessages: new SqliteDeviceMessagesStorage(store),
    pushTokens: new SqlitePushTokensStorage(store),
    pushQueue: new SqlitePushQueueStorage(store),
    attachments: new SqliteAttachmentStorage(store),
    search: new SqliteSearchStorage(store),
    ping: async () => store.ping(),
    writes: () => store.batcher.totals,
    settle: async () => {
      while (store.batcher.pending > 0) {
        // Lazy writes waiting for company go now.
        store.batcher.flushNextTurn();
        await new Promise((done) => setImmediate(done));
      }
    },
    close: () => {
      checkpoint(store.db);
      store.db.close();
    },
  };
}
