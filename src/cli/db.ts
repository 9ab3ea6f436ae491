import { existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { adminAuditLog } from '../services/admin-audit-file.js';
import { redactUrl } from '../redact-url.js';
import type { Config } from '../config/schema.js';
import {
  backupDatabase,
  checkDatabase,
  type Db,
  latestVersion,
  loadMigrations,
  migrate,
  openDatabase,
  schemaVersion,
} from '../storage/database.js';
import { StorageStartError } from '../storage/errors.js';
import { openPostgres } from '../storage/postgres/database.js';
import { loadPostgresMigrations } from '../storage/postgres/migrate.js';
import { DatabaseInUseError, databaseSize, takeExclusively, vacuum } from '../storage/vacuum.js';
import { addDbCopyCommand } from './db-copy.js';
import { addDbSearchCommands, checkPostgresSearch, printSqliteSearchCheck } from './db-search.js';
import { CliError, type DatabaseOptions, EXIT_USAGE, examples, migrationProgress, requireDatabase, resolveConfig, withDatabaseOptions } from './common.js';

/** Opens a database file with the configured settings and without migrating it: these commands take it as it is. */
function openAsIs(config: Config, file: string, mustExist: boolean): Db {
  return openDatabase({ file, synchronous: config.storage.synchronous, busyTimeoutMs: config.storage.busy_timeout_ms, mustExist });
}

export function addDbCommands(program: Command): void {
  const db = program.command('db').description('database maintenance (check and backup are safe while the server runs; vacuum and copy are not)');

  const migrateCommand = withDatabaseOptions(db.command('migrate').description('apply pending schema migrations (SQLite: stop a server of the older version first; PostgreSQL: safe while nodes of the previous version run)')).action(
    async (options: DatabaseOptions) => {
      const config = resolveConfig(options);
      if (config.storage.url !== '') return migratePostgres(config.storage.url, resolve(config.storage.dir));
      const database = openAsIs(config, requireDatabase(config), true);
      try {
        // Before the migrations: a schema changed with no audit line must not happen (adminAuditLog checks it can write).
        const audit = adminAuditLog(resolve(config.storage.dir));
        const applied = migrate(database, undefined, migrationProgress);
        const version = schemaVersion(database);
        if (applied.length > 0) audit.record('admin_database_migrated', { schemaVersion: version });
        console.log(applied.length === 0 ? `schema is up to date (version ${version})` : `applied migration(s) ${applied.join(', ')}; schema version ${version}`);
      } finally {
        database.close();
      }
    },
  );
  examples(migrateCommand, ['chatd db migrate --data /var/lib/chatd', 'CHATD_STORAGE_URL=postgres://chatd:PASSWORD@db/chatd chatd db migrate']);

  const check = withDatabaseOptions(
    db
      .command('check')
      .description('run integrity_check and foreign_key_check, and check the search index against the messages (exit 1 on a problem; PostgreSQL: the search index only)')
      .argument('[file]', 'a database file, such as a backup (default: the data directory\'s)'),
  ).action(async (file: string | undefined, options: DatabaseOptions) => {
    const config = resolveConfig(options);
    if (config.storage.url !== '' && file === undefined) return checkPostgresSearch(config);
    refuseOnPostgres(config, 'db check FILE', 'PostgreSQL checks its own pages (amcheck); back it up with pg_dump');
    const path = file ? resolve(file) : requireDatabase(config);
    const database = openAsIs(config, path, true);
    try {
      const result = checkDatabase(database);
      const version = schemaVersion(database);
      const known = latestVersion(loadMigrations());
      console.log(`${path}`);
      console.log(`  integrity:    ${result.integrity.join('; ')}`);
      console.log(`  foreign keys: ${result.foreignKeyViolations === 0 ? 'ok' : `${result.foreignKeyViolations} violation(s)`}`);
      console.log(`  schema:       version ${version} (this chatd knows up to ${known})`);
      // Only on a sound file: FTS5 reads its own pages, and a damaged file is for a backup to replace first.
      const searchOk = result.ok ? await printSqliteSearchCheck(database, path) : true;
      if (!result.ok) throw new CliError('the database has problems (see above); restore a backup or ask for help with this output');
      if (!searchOk) throw new CliError('the search index does not match the messages (see above): rebuild it with `chatd db reindex` (stop the server first)');
    } finally {
      database.close();
    }
  });
  examples(check, ['chatd db check', 'chatd db check /backups/chatd-2026-11-23.db', 'CHATD_STORAGE_URL=postgres://chatd:PASSWORD@db/chatd chatd db check']);

  const backup = withDatabaseOptions(
    db
      .command('backup')
      .description('copy the database to FILE with SQLite\'s online backup, while the server keeps serving')
      .argument('<file>', 'where to write the copy (must not exist)'),
  ).action(async (file: string, options: DatabaseOptions) => {
    const destination = resolve(file);
    if (existsSync(destination)) throw new CliError(`${destination} already exists; choose a new file name`, EXIT_USAGE);
    if (!existsSync(dirname(destination))) throw new CliError(`the directory ${dirname(destination)} does not exist; create it first`, EXIT_USAGE);
    // As it is: a backup taken before an upgrade must not upgrade first.
    const config = resolveConfig(options);
    refuseOnPostgres(config, 'db backup', 'back PostgreSQL up with pg_dump (docs/scaling.md, "Backups")');
    const database = openAsIs(config, requireDatabase(config), true);
    const started = Date.now();
    try {
      let lastReport = 0;
      await backupDatabase(database, destination, (copied, total) => {
        if (process.stderr.isTTY && Date.now() - lastReport > 200) {
          lastReport = Date.now();
          process.stderr.write(`\rbackup: ${Math.floor((copied / Math.max(total, 1)) * 100)}% (${copied}/${total} pages)`);
        }
      });
      if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
    } finally {
      database.close();
    }
    console.log(`backed up to ${destination} in ${Date.now() - started} ms; verify with: chatd db check ${destination}`);
  });
  examples(backup, ['chatd db backup /backups/chatd-$(date +%F).db']);

  const vacuumCommand = withDatabaseOptions(
    db.command('vacuum').description('rebuild the database file without its free pages, giving the space back (stop the server first)'),
  ).action((options: DatabaseOptions) => {
    const config = resolveConfig(options);
    refuseOnPostgres(config, 'db vacuum', "PostgreSQL's autovacuum does this while it serves");
    const file = requireDatabase(config);
    const database = openAsIs(config, file, true);
    try {
      try {
        takeExclusively(database, file);
      } catch (error) {
        if (!(error instanceof DatabaseInUseError)) throw error;
        throw new CliError(
          `${file} is in use by another process, most likely a running chatd serve: stop it first. ` +
            'A vacuum rewrites the whole file and the server could not write meanwhile (chatd db backup works while it serves)',
        );
      }
      const before = databaseSize(database, file);
      process.stderr.write(`vacuuming ${file}: ${formatBytes(before.bytes)}, of which ${formatBytes(before.freeBytes)} in free pages …\n`);
      const started = Date.now();
      vacuum(database);
      const after = databaseSize(database, file);
      console.log(
        `vacuumed ${file} in ${Date.now() - started} ms: ${formatBytes(before.bytes)} before, ${formatBytes(after.bytes)} after ` +
          `(${formatBytes(Math.max(0, before.bytes - after.bytes))} given back)`,
      );
    } finally {
      database.close();
    }
  });
  examples(vacuumCommand, ['sudo systemctl stop chatd && chatd db vacuum --data /var/lib/chatd && sudo systemctl start chatd']);

  addDbSearchCommands(db);
  addDbCopyCommand(db);
}

/**
 * check, backup and vacuum work on the SQLite file: with storage.url set, that file is not the
 * deployment's database, and a backup of it would be a backup of nothing.
 */
function refuseOnPostgres(config: Config, command: string, instead: string): void {
  if (config.storage.url === '') return;
  throw new CliError(`chatd ${command} works on SQLite, and storage.url (${redactUrl(config.storage.url)}) says this deployment runs on PostgreSQL: ${instead}`);
}

/** `chatd db migrate` with storage.url: the PostgreSQL schema, under the same advisory lock the nodes take at start. */
/**
 * `dir`: where this machine's admin audit log is, as for the other admin
 * commands on PostgreSQL (made if missing: this machine may hold no data
 * directory); it must be writable before anything changes.
 */
async function migratePostgres(url: string, dir: string): Promise<void> {
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  const audit = adminAuditLog(dir);
  const applied: string[] = [];
  let database: Awaited<ReturnType<typeof openPostgres>>;
  try {
    database = await openPostgres(url, { poolSize: 1, applied: (name) => applied.push(name) });
  } catch (error) {
    if (error instanceof StorageStartError) throw new CliError(error.message);
    throw error;
  }
  await database.close();
  const version = Math.max(0, ...loadPostgresMigrations().map((migration) => migration.version));
  if (applied.length > 0) audit.record('admin_database_migrated', { schemaVersion: version });
  console.log(applied.length === 0 ? `the PostgreSQL schema at ${database.label} is up to date` : `applied migration(s) ${applied.join(', ')} to ${database.label}`);
}

/** Bytes in the unit that reads best: 812 B, 64.0 KiB, 12.3 MiB, 1.20 GiB. */
function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}
