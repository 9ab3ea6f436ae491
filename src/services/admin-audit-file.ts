import { accessSync, constants, existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { StartupError } from '../errors.js';
import { createFileLogger } from '../log.js';
import { type AuditLog, PinoAuditLog } from './audit.js';

/** Where the admin commands record what they change: beside the database, read by its owner only. */
export const ADMIN_AUDIT_FILE = 'audit.log';

/**
 * The audit log of the admin CLI: lines appended to ADMIN_AUDIT_FILE in the
 * data directory (the server's own events go to the server's log), each
 * saying it came from the CLI and which system user ran it. The file is
 * made at the first change, so that commands that only read leave no trace.
 */
export function adminAuditLog(dir: string): AuditLog {
  const file = join(dir, ADMIN_AUDIT_FILE);
  // Checked before any change: a change committed with no audit line (say, an audit.log that an
  // earlier `sudo chatd …` left to root) must not happen; the command stops here instead.
  try {
    accessSync(existsSync(file) ? file : dir, constants.W_OK);
  } catch {
    throw new StartupError(`cannot write the admin audit log ${file}: run chatd as the user that owns the data directory (or chown the file to it)`);
  }
  let audit: AuditLog | undefined;
  return {
    record(event, fields) {
      audit ??= new PinoAuditLog(createFileLogger('info', file).child({ via: 'cli', os_user: systemUser() }));
      audit.record(event, fields);
    },
  };
}

function systemUser(): string {
  try {
    return userInfo().username;
  } catch {
    // A container's uid may have no name.
    return `uid ${process.getuid?.() ?? 'unknown'}`;
  }
}
