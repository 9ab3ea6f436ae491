import type { Storage } from '../ports/storage.js';
import type { AppendSettings } from './append.js';
import type { PgDatabase } from './database.js';
import { PostgresHistoryStorage } from './history.js';
import { PostgresMessagingStorage } from './messaging.js';
import { PostgresThreadStorage } from './threads.js';

/** The ports built so far (the message path's); the other helpers' classes complete it to `Storage` at merge. */
export type PostgresStorage = Pick<Storage, 'messaging' | 'history' | 'threads' | 'ping' | 'writes' | 'settle' | 'close'>;

/**
 * Every port on one PostgreSQL database: the units of work of all of them go
 * through its one PgWriteBatcher, so that one turn's writes are one
 * transaction. `settings`: what storing a message needs to know (inbox
 * bound, read diffusion, the push providers configured).
 */
export function postgresStorage(db: PgDatabase, settings: AppendSettings): PostgresStorage {
  return {
    messaging: new PostgresMessagingStorage(db, settings),
    history: new PostgresHistoryStorage(db),
    threads: new PostgresThreadStorage(db, settings),
    ping: () => db.ping(),
    writes: () => db.writes.totals,
    settle: () => db.writes.settle(),
    // Storage.close is synchronous: the pool ends in the background, after the writes already accepted.
    close: () => void db.close(),
  };
}
