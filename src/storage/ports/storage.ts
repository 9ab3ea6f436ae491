import type { WriteTotals } from '../write-batcher.js';
import type { AccountEventsStorage } from './account-events.js';
import type { AccountsStorage } from './accounts.js';
import type { AdminStorage } from './admin.js';
import type { AttachmentStorage } from './attachments.js';
import type { ContactsStorage } from './contacts.js';
import type { DeliveryStorage } from './delivery.js';
import type { DeviceMessagesStorage } from './device-messages.js';
import type { HistoryStorage } from './history.js';
import type { KeysStorage } from './keys.js';
import type { MessagingStorage } from './messaging.js';
import type { PresenceStorage } from './presence.js';
import type { PushQueueStorage, PushTokensStorage } from './push.js';
import type { SearchStorage } from './search.js';
import type { ThreadStorage } from './threads.js';

/**
 * One storage engine as the server sees it: every port its services take,
 * and what the server's lifecycle asks of the engine itself. The composition
 * root builds one (sqliteStorage today; PostgreSQL plugs in here) and hands
 * each service its port.
 */
export interface Storage {
  readonly accounts: AccountsStorage;
  readonly admin: AdminStorage;
  readonly accountEvents: AccountEventsStorage;
  readonly messaging: MessagingStorage;
  readonly history: HistoryStorage;
  readonly threads: ThreadStorage;
  readonly delivery: DeliveryStorage;
  readonly presence: PresenceStorage;
  readonly contacts: ContactsStorage;
  readonly keys: KeysStorage;
  readonly deviceMessages: DeviceMessagesStorage;
  readonly pushTokens: PushTokensStorage;
  readonly pushQueue: PushQueueStorage;
  readonly attachments: AttachmentStorage;
  readonly search: SearchStorage;
  /** Whether the database answers (the health check; a round trip on a networked engine). */
  ping(): Promise<boolean>;
  /** Write transactions run so far (the metrics). */
  writes(): WriteTotals;
  /** Resolves once every write accepted so far has committed (or failed): shutdown waits on it before closing. */
  settle(): Promise<void>;
  /** Closes the database; writes accepted after settle() are lost. */
  close(): void;
}
