import { statSync } from 'node:fs';
import type { Db } from './database.js';

/** How long to wait for other connections to let go: an admin command finishes within this, a running server never does. */
const LOCK_WAIT_MS = 1_000;

/** Another connection holds the database open: a running server, most likely. */
export class DatabaseInUseError extends Error {
  constructor(readonly file: string) {
    super(`${file} is open in another process`);
    this.name = 'DatabaseInUseError';
  }
}

export interface DatabaseSize {
  /** The database file and its write-ahead log, in bytes. */
  readonly bytes: number;
  /** Pages of the file that hold nothing (freed by deletes), in bytes: what a vacuum can give back. */
  readonly freeBytes: number;
}

export function databaseSize(db: Db, file: string): DatabaseSize {
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  const free = db.pragma('freelist_count', { simple: true }) as number;
  return { bytes: fileBytes(file) + fileBytes(`${file}-wal`), freeBytes: free * pageSize };
}

/**
 * Takes the database for this connection alone, or throws DatabaseInUseError.
 * In exclusive locking mode the first write transaction takes SQLite's
 * exclusive lock and keeps it until the connection closes; in WAL mode that
 * lock cannot be had while any other connection has the file open, even an
 * idle one. So this refuses while a server runs, and a server that starts
 * meanwhile waits (its busy timeout) and then stops with an error.
 */
export function takeExclusively(db: Db, file: string): void {
  const configuredWait = db.pragma('busy_timeout', { simple: true }) as number;
  db.pragma(`busy_timeout = ${Math.min(configuredWait, LOCK_WAIT_MS)}`);
  db.pragma('locking_mode = EXCLUSIVE');
  try {
    db.exec('BEGIN EXCLUSIVE');
    db.exec('COMMIT');
  } catch (error) {
    db.pragma('locking_mode = NORMAL');
    if ((error as { code?: string }).code === 'SQLITE_BUSY') throw new DatabaseInUseError(file);
    throw error;
  } finally {
    db.pragma(`busy_timeout = ${configuredWait}`);
  }
}

/**
 * Rebuilds the database file without its free pages (SQLite's VACUUM), then
 * copies the write-ahead log back into the file and truncates it, so that the
 * space returns to the file system now. Needs the database taken with
 * takeExclusively, and free disk space of about twice its size meanwhile.
 */
export function vacuum(db: Db): void {
  db.exec('VACUUM');
  db.pragma('wal_checkpoint(TRUNCATE)');
}

function fileBytes(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
