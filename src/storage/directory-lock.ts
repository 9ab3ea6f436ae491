import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { PRIVATE_FILE_MODE, createPrivateFile } from './data-directory.js';

/** The file whose lock the serving process holds, and the note that says who that is. */
export const LOCK_FILE = 'chatd.lock';
export const LOCK_NOTE_FILE = 'chatd.lock.json';

/** Who holds a data directory, as its note says. */
export interface LockHolder {
  readonly pid: number;
  /** Null until the holder listens. */
  readonly port: number | null;
  readonly host: string | null;
  /** Whether it serves HTTPS; null until it listens, and in notes of a chatd that did not say. */
  readonly tls: boolean | null;
  readonly since: string;
}

/** Where the holder listens, once it does. */
export interface HolderAddress {
  readonly port: number | null;
  readonly host: string | null;
  readonly tls: boolean | null;
}

/** Another process serves this data directory. */
export class DataDirectoryLockedError extends Error {
  constructor(
    readonly dir: string,
    readonly holder: LockHolder | undefined,
  ) {
    const who =
      holder === undefined
        ? 'another process'
        : `another chatd (pid ${holder.pid}, ${holder.port === null ? 'still starting' : `port ${holder.port}`}, since ${holder.since})`;
    super(`the data directory ${dir} is in use by ${who}; stop it first, or give this server a data directory of its own (--data)`);
    this.name = 'DataDirectoryLockedError';
  }
}

export interface DataDirectoryLock {
  /** Writes who holds the lock, for a second server to name; again once the port is known. */
  describe(holder: HolderAddress): void;
  /** Removes the note, then lets go of the lock. The lock file stays (see lockDataDirectory). */
  release(): void;
}

/**
 * Takes the data directory for this process, or throws DataDirectoryLockedError
 * naming the process that has it. Two servers on one database would each hold
 * their own connections and fanout, and split the clients between them.
 *
 * The lock is SQLite's: an exclusive transaction on a small database of its
 * own (`chatd.lock`), opened without waiting and held for the life of the
 * process. SQLite takes it with an OS file lock (fcntl on Unix, LockFileEx on
 * Windows), which the kernel drops when the process ends in any way — kill -9
 * and power loss included — so no stale lock can outlive its server and no
 * process id has to be trusted. A lock file made with O_EXCL and holding a pid
 * would need guessing whether that pid is still ours after a crash (in a
 * container a restarted server often gets the same pid), and two servers
 * clearing a stale file at once could both win. The note (`chatd.lock.json`,
 * pid and port) only names the holder in the message; the lock decides.
 *
 * The lock file is never deleted: a process that opened it just before the
 * delete would lock a file nobody else can find any more.
 */
export function lockDataDirectory(dir: string): DataDirectoryLock {
  const file = join(dir, LOCK_FILE);
  const note = join(dir, LOCK_NOTE_FILE);
  createPrivateFile(file);
  // timeout 0: fail at once when held, rather than wait better-sqlite3's default 5 s.
  const db = new Database(file, { timeout: 0 });
  try {
    // Nothing is ever written: no journal file is needed next to it (SQLite refuses OFF on a new file).
    db.pragma('journal_mode = MEMORY');
    db.exec('BEGIN EXCLUSIVE');
  } catch (error) {
    db.close();
    if ((error as { code?: string }).code === 'SQLITE_BUSY') throw new DataDirectoryLockedError(dir, readHolder(note));
    throw error;
  }
  const since = new Date().toISOString();
  const describe = (holder: HolderAddress): void => {
    // Written aside and renamed into place, so that a reader never sees half of it.
    const temporary = `${note}.${process.pid}`;
    writeFileSync(temporary, `${JSON.stringify({ pid: process.pid, port: holder.port, host: holder.host, tls: holder.tls, since })}\n`, { mode: PRIVATE_FILE_MODE });
    renameSync(temporary, note);
  };
  describe({ port: null, host: null, tls: null });
  let held = true;
  return {
    describe,
    release: () => {
      if (!held) return;
      held = false;
      // The note first: a server that takes the lock next writes its own, which must survive.
      rmSync(note, { force: true });
      db.exec('ROLLBACK');
      db.close();
    },
  };
}

/**
 * Who serves the data directory `dir`, as its note says; undefined when there
 * is no note (no server holds it, or one is between its lock and its note) or
 * it is not chatd's. Throws when the note is there but cannot be read (another
 * account's, mode 0600): that says nothing about whether a server runs.
 */
export function readLockHolder(dir: string): LockHolder | undefined {
  let text: string;
  try {
    text = readFileSync(join(dir, LOCK_NOTE_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return parseHolder(text);
}

function readHolder(note: string): LockHolder | undefined {
  try {
    return parseHolder(readFileSync(note, 'utf8'));
  } catch {
    // No note yet (the holder is between its lock and its note), or one this process may not read.
    return undefined;
  }
}

function parseHolder(text: string): LockHolder | undefined {
  let value: Partial<LockHolder>;
  try {
    value = JSON.parse(text) as Partial<LockHolder>;
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || typeof value.pid !== 'number' || typeof value.since !== 'string') return undefined;
  return {
    pid: value.pid,
    port: typeof value.port === 'number' ? value.port : null,
    host: typeof value.host === 'string' ? value.host : null,
    tls: typeof value.tls === 'boolean' ? value.tls : null,
    since: value.since,
  };
}
