import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';

/*
 * The data directory holds password hashes, token hashes and every message:
 * only the account chatd runs as may enter it or read its files. Modes are
 * set with chmod after creating, because the mode given to mkdir/open is
 * masked by the process umask: a umask of 000 would leave files 0666, and
 * one of 0277 a directory chatd itself cannot write into.
 */

export const PRIVATE_DIRECTORY_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** Creates `dir` (its parents with the usual modes) as 0700 when it does not exist yet. */
export function createPrivateDirectory(dir: string): void {
  if (existsSync(dir)) return;
  mkdirSync(dirname(dir), { recursive: true });
  try {
    mkdirSync(dir, { mode: PRIVATE_DIRECTORY_MODE });
  } catch (error) {
    // Another process (a second server starting at once) made it first: the lock decides between us.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return;
  }
  chmodSync(dir, PRIVATE_DIRECTORY_MODE);
}

/**
 * Creates an empty `file` as 0600 when it does not exist. SQLite then gives the
 * -wal, -shm and -journal files it makes next to a database the database file's
 * own mode, so creating the database this way keeps all of them private.
 */
export function createPrivateFile(file: string): void {
  let fd: number;
  try {
    fd = openSync(file, 'wx', PRIVATE_FILE_MODE);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw error;
  }
  closeSync(fd);
  chmodSync(file, PRIVATE_FILE_MODE);
}

/** A mode chatd narrowed, or failed to narrow (a file owned by another account). */
export interface ModeChange {
  readonly path: string;
  /** The permission bits found, like 0o755. */
  readonly from: number;
  readonly to: number;
  /** Set when chmod failed; the file kept its mode. */
  readonly error?: string;
}

/**
 * Makes the data directory private: creates it 0700, or narrows an existing
 * one (made by an earlier chatd, or by hand) to 0700 and the database files in
 * it (`chatd.db` and its -wal and -shm, the lock files) to 0600. Only bits for
 * the group and others are taken away; a file already stricter is left alone.
 * Returns what it changed, for the log.
 */
export function secureDataDirectory(dir: string, filePrefix: string): ModeChange[] {
  createPrivateDirectory(dir);
  const changes: ModeChange[] = [];
  const narrow = (path: string, to: number): void => {
    const from = statSync(path).mode & 0o777;
    if ((from & 0o077) === 0) return;
    try {
      chmodSync(path, to);
      changes.push({ path, from, to });
    } catch (error) {
      changes.push({ path, from, to, error: (error as NodeJS.ErrnoException).code ?? String(error) });
    }
  };
  narrow(dir, PRIVATE_DIRECTORY_MODE);
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (name.startsWith(filePrefix) && statSync(path).isFile()) narrow(path, PRIVATE_FILE_MODE);
  }
  return changes;
}

/** "0644": a mode as operators write it. */
export function formatMode(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, '0')}`;
}
