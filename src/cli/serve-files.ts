import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { type ModeChange, formatMode, secureDataDirectory } from '../storage/data-directory.js';
import { DATABASE_FILE } from '../storage/database.js';
import { type DataDirectoryLock, lockDataDirectory } from '../storage/directory-lock.js';
import { CliError } from './common.js';

/**
 * Makes the data directory private (0700, its database files 0600), then takes
 * it for this server: a second server on the same directory stops here with a
 * message naming the first (DataDirectoryLockedError).
 */
export function takeDataDirectory(config: Config, log: Logger): DataDirectoryLock {
  const dir = resolve(config.storage.dir);
  let changes: ModeChange[];
  try {
    // chatd.db, its -wal and -shm, chatd.lock and its note: the files chatd makes there.
    changes = secureDataDirectory(dir, DATABASE_FILE.replace(/\.db$/, '.'));
  } catch (error) {
    throw new CliError(`cannot prepare the data directory ${dir}: ${(error as Error).message}`);
  }
  const lock = lockDataDirectory(dir);
  for (const change of changes) {
    const details = { path: change.path, from: formatMode(change.from), to: formatMode(change.to) };
    if (change.error === undefined) log.warn(details, 'narrowed the mode of a data file others could read');
    else log.warn({ ...details, error: change.error }, 'others can read this data file and chatd cannot change its mode: chmod it yourself');
  }
  return lock;
}

/** The configured files that hold a secret key, by config key. */
function keyFiles(config: Config): Array<[string, string]> {
  const files: Array<[string, string]> = [
    ['apns.key_file', config.apns.key_file],
    ['fcm.service_account_file', config.fcm.service_account_file],
    ['tls.key', config.tls.key],
  ];
  return files.filter(([, path]) => path !== '');
}

/**
 * Warns about a key file every account on the machine may read. Only "others"
 * count: a key readable by a group (root:chatd 0640) is a common, deliberate set-up.
 * chatd does not change these files: they are the operator's, often read-only to it.
 */
export function warnAboutReadableKeyFiles(config: Config, log: Logger): void {
  for (const [key, path] of keyFiles(config)) {
    let mode: number;
    try {
      mode = statSync(path).mode;
    } catch {
      continue; // Already reported by the provider that reads it.
    }
    if ((mode & 0o004) !== 0) {
      log.warn({ key, path, mode: formatMode(mode) }, 'this key file is readable by every account on the machine; make it private (chmod 600 or 640)');
    }
  }
}
