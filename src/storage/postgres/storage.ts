import type { Storage } from '../ports/storage.js';
import { PostgresAccountEventsStorage } from './account-events.js';
import { PostgresAdminStorage } from './admin.js';
import { PostgresAttachmentStorage } from './attachments.js';
import type { AppendSettings } from './append.js';
import { PostgresContactsStorage } from './contacts.js';
import type { PgDatabase } from './database.js';
import { PostgresDeliveryStorage } from './delivery.js';
import { PostgresDeviceMessagesStorage } from './device-messages.js';
import { PostgresHistoryStorage } from './history.js';
import { PostgresKeysStorage } from './keys.js';
import { PostgresMessagingStorage } from './messaging.js';
import { PostgresPresenceStorage } from './presence.js';
import { PostgresPushQueueStorage, PostgresPushTokensStorage } from './push.js';
import { PostgresSearchStorage } from './search.js';
import { PostgresThreadStorage } from './threads.js';

export interface PostgresStorageOptions {
  /**
   * This node's name in the push queue's claims, stable across its restarts
   * (a node that restarts takes its own claims back at once; another node's
   * wait for their lease).
   */
  readonly claimant: string;
}

/**
 * Every port on one PostgreSQL database: the units of work of all of them go
 * through its one PgWriteBatcher, so that one turn's writes are one
 * transaction. `settings`: what storing a message needs to know (inbox
 * bound, read diffusion, the push providers configured).
 */
export function postgresStorage(db: PgDatabase, settings: AppendSettings, options: PostgresStorageOptions): Storage {
  // One object serves both: the admin's storage is the accounts' storage plus the admin's own.
  const admin = new PostgresAdminStorage(db);
  return {
    accounts: admin,
    admin,
    accountEvents: new PostgresAccountEventsStorage(db),
    messaging: new PostgresMessagingStorage(db, settings),
    history: new PostgresHistoryStorage(db),
    threads: new PostgresThreadStorage(db, settings),
    delivery: new PostgresDeliveryStorage(db),
    presence: new PostgresPresenceStorage(db),
    contacts: new PostgresContactsStorage(db),
    keys: new PostgresKeysStorage(db),
    deviceMessages: new PostgresDeviceMessagesStorage(db),
    pushTokens: new PostgresPushTokensStorage(db),
    pushQueue: new PostgresPushQueueStorage(db, { claimant: options.claimant }),
    attachments: new PostgresAttachmentStorage(db),
    search: new PostgresSearchStorage(db),
    ping: () => db.ping(),
    writes: () => db.writes.totals,
    settle: () => db.writes.settle(),
    // Storage.close is synchronous: the pool ends in the background, after the writes already accepted.
    close: () => void db.close(),
  };
}
