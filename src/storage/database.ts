import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { createPrivateDirectory, createPrivateFile } from './data-directory.js';

export type Db = Database.Database;

/** The database file's name inside the data directory. */
export const DATABASE_FILE = 'chatd.db';

/** Where the numbered .sql migrations live: <package>/migrations, from both src/ and dist/. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

/** Opening or migrating the database failed in a way the operator must fix. */
export class DatabaseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatabaseError';
  }
}

export interface OpenOptions {
  readonly file: string;
  readonly synchronous: 'full' | 'normal';
  readonly busyTimeoutMs: number;
  /** Refuse to create a database that does not exist yet (checks, backups of a named file). */
  readonly mustExist?: boolean;
  /** Checkpoint the WAL into the database file once it holds this many pages (SQLite's default: 1,000). */
  readonly walCheckpointPages?: number;
}

/**
 * Opens the SQLite file in WAL mode with foreign keys on and the chosen durability.
 * Several processes may open it at once (the server and the admin CLI); the busy
 * timeout makes a writer wait for the lock instead of failing. A database it
 * creates is 0600 in a 0700 directory, whatever the umask (data-directory.ts).
 */
export function openDatabase(options: OpenOptions): Db {
  if (options.mustExist && !existsSync(options.file)) {
    throw new DatabaseError(`no database at ${options.file}`);
  }
  // ':memory:' (the unit tests' database) is no file: nothing to create.
  if (!options.mustExist && options.file !== ':memory:') {
    try {
      createPrivateDirectory(dirname(options.file));
      createPrivateFile(options.file);
    } catch (error) {
      throw new DatabaseError(`cannot create database ${options.file}: ${(error as Error).message}`);
    }
  }
  let db: Db;
  try {
    db = new Database(options.file, { fileMustExist: options.mustExist ?? false });
    db.pragma(`busy_timeout = ${options.busyTimeoutMs}`);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${options.synchronous.toUpperCase()}`);
    db.pragma('foreign_keys = ON');
    // A message deleted for everyone (and its edits) is overwritten in place: with this on, SQLite zeroes
    // the bytes it frees instead of leaving them in free pages and cells, so the erased text leaves the
    // database file; the WAL keeps old page images until it is emptied, which the messaging storage does
    // soon after each erasure (SqliteMessagingStorage.eraseFromLog). It costs writes of freed space only.
    db.pragma('secure_delete = ON');
    if (options.walCheckpointPages !== undefined) db.pragma(`wal_autocheckpoint = ${options.walCheckpointPages}`);
  } catch (error) {
    throw new DatabaseError(`cannot open database ${options.file}: ${(error as Error).message}`);
  }
  return db;
}

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/**
 * Reads NNNN_name.sql files, in order, numbered 1, 2, 3… without a gap or a
 * repeat: a database records only the last number applied (user_version), so
 * a migration that landed after a higher one would never be applied to it.
 */
export function loadMigrations(dir: string = MIGRATIONS_DIR): Migration[] {
  const migrations = readdirSync(dir)
    .filter((file) => /^\d{4}_[\w-]+\.sql$/.test(file))
    .sort()
    .map((file) => ({ version: Number(file.slice(0, 4)), name: file, sql: readFileSync(join(dir, file), 'utf8') }));
  migrations.forEach((migration, index) => {
    const previous = index === 0 ? 0 : (migrations[index - 1] as Migration).version;
    if (migration.version !== previous + 1) throw new Error(`migrations: ${migration.name} does not follow version ${previous} (expected ${String(previous + 1).padStart(4, '0')}_…)`);
  });
  return migrations;
}

/** The schema version the migrations lead to: the last one's number. */
export function latestVersion(migrations: readonly Migration[]): number {
  return migrations.at(-1)?.version ?? 0;
}

export function schemaVersion(db: Db): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/** Fails when the database was written by a newer chatd: running older code on it could corrupt it. */
export function assertSchemaNotNewer(db: Db, migrations: readonly Migration[]): void {
  const current = schemaVersion(db);
  const known = latestVersion(migrations);
  if (current > known) {
    throw new DatabaseError(
      `the database schema is version ${current}, newer than this chatd knows (${known}); ` +
        'it was written by a newer chatd: upgrade chatd, or restore a backup made by this version',
    );
  }
}

/** Hears of each migration migrate() applies, before and after. */
export interface MigrationProgress {
  applying(name: string): void;
  applied(name: string, ms: number): void;
}

/**
 * Applies the migrations the database lacks, each in its own IMMEDIATE
 * transaction together with its version bump, so that two processes starting
 * at once cannot apply one twice. Returns the versions applied.
 *
 * Foreign keys are off while they run and checked before each commits, as
 * SQLite's procedure for changing a table requires: a migration may rebuild
 * a table others refer to (create, copy, drop, rename), which enforcement
 * would refuse at the drop. The pragma only takes effect outside a transaction.
 * A migration is refused if it adds violations (ones already there are
 * `chatd db check`'s to report, not a reason to stop upgrading). A rebuild
 * passes the whole table through the WAL, so the WAL is truncated after.
 *
 * `progress` hears of each migration before and after it runs: one that
 * rebuilds a large table takes seconds (0009: about 3 s per million messages).
 */
export function migrate(db: Db, migrations: readonly Migration[] = loadMigrations(), progress?: MigrationProgress): number[] {
  assertSchemaNotNewer(db, migrations);
  defineMigrationFunctions(db);
  const applied: number[] = [];
  const enforcing = db.pragma('foreign_keys', { simple: true }) === 1;
  if (enforcing) db.pragma('foreign_keys = OFF');
  try {
    for (const migration of migrations) {
      const step = db.transaction(() => {
        if (schemaVersion(db) >= migration.version) return false;
        progress?.applying(migration.name);
        const started = performance.now();
        const violationsBefore = foreignKeyViolations(db);
        db.exec(migration.sql);
        const added = foreignKeyViolations(db) - violationsBefore;
        if (added > 0) throw new DatabaseError(`migration ${migration.name} would add ${added} foreign key violation(s); nothing of it was applied`);
        db.pragma(`user_version = ${migration.version}`);
        progress?.applied(migration.name, performance.now() - started);
        return true;
      });
      if (step.immediate()) applied.push(migration.version);
    }
  } finally {
    if (enforcing) db.pragma('foreign_keys = ON');
  }
  if (applied.length > 0) checkpoint(db);
  return applied;
}

/**
 * SQL functions the migrations may call. sha256(text) is the hash the
 * services keep of tokens and invite codes (crypto/tokens.ts, hashToken): the
 * same bytes, so that a migration can hash secrets stored in the clear.
 */
function defineMigrationFunctions(db: Db): void {
  db.function('sha256', { deterministic: true }, (text: unknown) => createHash('sha256').update(String(text), 'utf8').digest());
}

function foreignKeyViolations(db: Db): number {
  return (db.pragma('foreign_key_check') as unknown[]).length;
}

export interface CheckResult {
  readonly ok: boolean;
  readonly integrity: string[];
  readonly foreignKeyViolations: number;
}

/** integrity_check and foreign_key_check: what `chatd db check` reports. */
export function checkDatabase(db: Db): CheckResult {
  const integrity = (db.pragma('integrity_check') as Array<{ integrity_check: string }>).map((row) => row.integrity_check);
  const foreignKeyViolations = (db.pragma('foreign_key_check') as unknown[]).length;
  const integrityOk = integrity.length === 1 && integrity[0] === 'ok';
  return { ok: integrityOk && foreignKeyViolations === 0, integrity, foreignKeyViolations };
}

/**
 * Copies the live database to `destination` with SQLite's online backup API,
 * while other connections keep writing. Steps are large so that a busy writer
 * does not make the copy restart forever; `onProgress` gets (copied, total) pages.
 * The copy holds everything the database does: it is made 0600, whatever the umask.
 */
export async function backupDatabase(
  db: Db,
  destination: string,
  onProgress: (copiedPages: number, totalPages: number) => void = () => {},
): Promise<void> {
  const pagesPerStep = 25_600;
  createPrivateFile(destination);
  await db.backup(destination, {
    progress({ totalPages, remainingPages }) {
      onProgress(totalPages - remainingPages, totalPages);
      return pagesPerStep;
    },
  });
  // A restored backup replaces data clients have already seen (its seqs may be behind theirs):
  // a new epoch makes them drop their cursors and sync afresh, as the welcome frame tells them.
  const copy = new Database(destination);
  try {
    copy.prepare(`UPDATE meta SET value = lower(hex(randomblob(16))) WHERE key = 'epoch'`).run();
  } finally {
    copy.close();
  }
}

/** Folds the WAL into the main file and empties it; done at shutdown. */
export function checkpoint(db: Db): void {
  db.pragma('wal_checkpoint(TRUNCATE)');
}

/** Bytes on disk: the main file plus its WAL. */
export function databaseSize(file: string): number {
  const size = (path: string): number => (existsSync(path) ? statSync(path).size : 0);
  return size(file) + size(`${file}-wal`);
}

export function readEpoch(db: Db): string {
  const row = db.prepare(`SELECT value FROM meta WHERE key = 'epoch'`).get() as { value: string } | undefined;
  if (!row) throw new DatabaseError('the database has no epoch; it was not created by chatd');
  return row.value;
}
