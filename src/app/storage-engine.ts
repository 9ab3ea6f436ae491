import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { readEpoch } from '../storage/database.js';
import { openPostgres } from '../storage/postgres/database.js';
import { searchFeatures } from '../storage/postgres/search.js';
import { postgresStorage } from '../storage/postgres/storage.js';
import type { Storage } from '../storage/ports/storage.js';
import type { AppendSettings } from '../storage/sqlite/append.js';
import { sqliteStorage } from '../storage/sqlite/storage.js';
import { Store } from '../storage/store.js';
import { type EngineHealth, postgresEngine, sqliteEngine } from './engines.js';
import type { Db } from '../storage/database.js';

/** The storage engine a node runs on, opened and migrated. */
export interface OpenedStorage {
  readonly storage: Storage;
  /** The database's epoch (the welcome frame's): clients that see it change sync afresh. */
  readonly epoch: string;
  readonly health: EngineHealth;
  /** Where the data is, for the start-up line: the SQLite file, or the PostgreSQL URL without its password. */
  readonly where: string;
  /** Several nodes can share it (PostgreSQL); SQLite is one node's. */
  readonly shared: boolean;
}

/**
 * SQLite in storage.dir (the default) or PostgreSQL at storage.url.
 * `openSqlite`: the composition root's own opener (it migrates with progress
 * in the log). `claimant`: the node's stable name in the push queue's claims.
 */
export async function openStorageEngine(
  config: Config,
  settings: AppendSettings,
  log: Logger,
  sqlite: { readonly open: () => Db; readonly file: string },
  claimant: string,
): Promise<OpenedStorage> {
  if (config.storage.url !== '') {
    const db = await openPostgres(config.storage.url, {
      poolSize: config.storage.pool_size,
      applied: (name) => log.info({ migration: name }, 'PostgreSQL schema upgraded'),
    });
    try {
      // Said once, at start: search works without these extensions, with the fallbacks named (docs/search.md).
      const search = await searchFeatures(db);
      if (!search.unaccent) log.warn('search: PostgreSQL extension unaccent is not installed: diacritics are folded for common Latin letters only');
      if (!search.trigrams) log.warn('search: PostgreSQL extension pg_trgm is not installed: Chinese/Japanese and substring searches scan the searcher\'s messages (LIKE)');
      return { storage: postgresStorage(db, settings, { claimant }), epoch: await db.epoch(), health: postgresEngine(db), where: db.label, shared: true };
    } catch (error) {
      await db.close();
      throw error;
    }
  }
  const db = sqlite.open();
  const storage = sqliteStorage(new Store(db), settings);
  return { storage, epoch: readEpoch(db), health: sqliteEngine(storage), where: sqlite.file, shared: false };
}
