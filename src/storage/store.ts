import type { Db } from './database.js';
import { AccountEventsRepository } from './repositories/account-events.js';
import { ContactsRepository } from './repositories/contacts.js';
import { CursorsRepository } from './repositories/cursors.js';
import { DeviceMessagesRepository } from './repositories/device-messages.js';
import { DevicesRepository } from './repositories/devices.js';
import { HiddenMessagesRepository } from './repositories/hidden.js';
import { InboxRepository } from './repositories/inbox.js';
import { InvitesRepository } from './repositories/invites.js';
import { KeysRepository } from './repositories/keys.js';
import { MessagesRepository } from './repositories/messages.js';
import { PushRepository } from './repositories/push.js';
import { StatsRepository } from './repositories/stats.js';
import { ThreadsRepository } from './repositories/threads.js';
import { UsersRepository } from './repositories/users.js';
import { WriteBatcher } from './write-batcher.js';

/** Every repository over one open database, plus its transaction helper. */
export class Store {
  readonly users: UsersRepository;
  readonly devices: DevicesRepository;
  readonly invites: InvitesRepository;
  readonly stats: StatsRepository;
  readonly threads: ThreadsRepository;
  readonly messages: MessagesRepository;
  readonly hidden: HiddenMessagesRepository;
  readonly inbox: InboxRepository;
  readonly cursors: CursorsRepository;
  readonly contacts: ContactsRepository;
  readonly push: PushRepository;
  readonly keys: KeysRepository;
  readonly deviceMessages: DeviceMessagesRepository;
  readonly accountEvents: AccountEventsRepository;
  /** Group commit for the message path. */
  readonly batcher: WriteBatcher;
  private readonly pingStatement;

  constructor(readonly db: Db) {
    this.users = new UsersRepository(db);
    this.devices = new DevicesRepository(db);
    this.invites = new InvitesRepository(db);
    this.stats = new StatsRepository(db);
    this.threads = new ThreadsRepository(db);
    this.messages = new MessagesRepository(db);
    this.hidden = new HiddenMessagesRepository(db);
    this.inbox = new InboxRepository(db);
    this.cursors = new CursorsRepository(db);
    this.contacts = new ContactsRepository(db);
    this.push = new PushRepository(db);
    this.keys = new KeysRepository(db);
    this.deviceMessages = new DeviceMessagesRepository(db);
    this.accountEvents = new AccountEventsRepository(db);
    this.batcher = new WriteBatcher(db);
    this.pingStatement = db.prepare('SELECT 1');
  }

  /** True when the database answers a query (for /healthz). */
  ping(): boolean {
    try {
      this.pingStatement.get();
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Runs `work` in one IMMEDIATE transaction (it takes the write lock at once,
   * so a concurrent writer waits on busy_timeout instead of failing mid-way).
   * `work` must be synchronous: no awaits inside a transaction.
   */
  transaction<T>(work: () => T): T {
    return this.db.transaction(work).immediate();
  }

  /** Runs `work` in one read transaction: a consistent snapshot of several queries, without the write lock. */
  read<T>(work: () => T): T {
    return this.db.transaction(work).deferred();
  }
}
