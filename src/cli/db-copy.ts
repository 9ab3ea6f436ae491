import { resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { urlProblem } from '../config/engine-urls.js';
import { redactUrl } from '../redact-url.js';
import {
  CopyFailedError,
  type CopyProgress,
  CopyVerificationError,
  SchemaMismatchError,
  TargetNotEmptyError,
  copyToPostgres,
  nonEmptyTargetTables,
} from '../storage/copy-to-postgres.js';
import { latestVersion, loadMigrations, openDatabase, schemaVersion } from '../storage/database.js';
import { DataDirectoryLockedError, lockDataDirectory } from '../storage/directory-lock.js';
import { StorageStartError } from '../storage/errors.js';
import { checkout } from '../storage/postgres/checkout.js';
import { openPostgres } from '../storage/postgres/database.js';
import { CliError, type DatabaseOptions, EXIT_USAGE, examples, requireDatabase, resolveConfig, withDatabaseOptions } from './common.js';

interface CopyOptions extends DatabaseOptions {
  to: string;
}

/**
 * `chatd db copy --to postgres://…`: from one node on SQLite to PostgreSQL
 * (docs/scaling.md, "Growing from one node"). The server must be stopped: a
 * message sent during the copy would not be in it.
 */
export function addDbCopyCommand(db: Command): void {
  const command = withDatabaseOptions(
    db
      .command('copy')
      .description('copy the SQLite database into an empty PostgreSQL database (stop the server first), verify it, and give it a new epoch')
      .addOption(new Option('--to <url>', 'the PostgreSQL database: postgres://user:password@host:5432/database (must be empty; chatd creates its tables)').makeOptionMandatory()),
  ).action((options: CopyOptions) => copy(options));
  examples(command, [
    'chatd db copy --data /var/lib/chatd --to postgres://chatd:PASSWORD@db.internal:5432/chatd',
    'CHATD_STORAGE_URL=postgres://chatd:PASSWORD@db/chatd chatd db copy --to "$CHATD_STORAGE_URL"',
  ]);
}

async function copy(options: CopyOptions): Promise<void> {
  const problem = urlProblem(options.to, ['postgres:', 'postgresql:']);
  if (problem) throw new CliError(`--to must be a postgres:// URL such as postgres://chatd:PASSWORD@db:5432/chatd: ${problem}`, EXIT_USAGE);
  const target = redactUrl(options.to);
  const config = resolveConfig(options);
  const file = requireDatabase(config);
  const dir = resolve(config.storage.dir);
  let lock: ReturnType<typeof lockDataDirectory>;
  try {
    lock = lockDataDirectory(dir);
  } catch (error) {
    if (!(error instanceof DataDirectoryLockedError)) throw error;
    throw new CliError(`${error.message.replace(/; stop it first.*$/, '')}: stop the server first, so that no message is sent while the database is copied`);
  }
  try {
    const source = openDatabase({ file, synchronous: config.storage.synchronous, busyTimeoutMs: config.storage.busy_timeout_ms, mustExist: true });
    try {
      const version = schemaVersion(source);
      const latest = latestVersion(loadMigrations());
      if (version !== latest) {
        throw new CliError(
          version < latest
            ? `the database schema is version ${version} and this chatd copies version ${latest}: upgrade it first with \`chatd db migrate\``
            : `the database schema is version ${version}, newer than this chatd knows (${latest}): copy it with the chatd that wrote it`,
        );
      }
      process.stderr.write(`copying ${file} to ${target} …\n`);
      const started = Date.now();
      let database: Awaited<ReturnType<typeof openPostgres>>;
      try {
        // A database that holds rows is refused before its schema is touched (it may be a live deployment's).
        const probe = await openPostgres(options.to, { poolSize: 1, migrate: false });
        try {
          const taken = await checkout(probe.pool);
          try {
            const nonEmpty = await nonEmptyTargetTables(taken.client);
            if (nonEmpty.length > 0) throw new TargetNotEmptyError(nonEmpty);
          } finally {
            taken.release();
          }
        } finally {
          await probe.close();
        }
        // Creates chatd's tables in the empty database; a database of another chatd version stops here.
        database = await openPostgres(options.to, { poolSize: 1, queryTimeoutMs: 0, applied: (name) => process.stderr.write(`  created the schema: ${name}\n`) });
      } catch (error) {
        if (error instanceof StorageStartError) throw new CliError(error.message);
        if (error instanceof TargetNotEmptyError) throw notEmpty(target, error);
        throw error;
      }
      try {
        const taken = await checkout(database.pool);
        let summary: Awaited<ReturnType<typeof copyToPostgres>>;
        try {
          summary = await copyToPostgres(source, taken.client, progressOnStderr());
        } catch (error) {
          if (error instanceof TargetNotEmptyError) throw notEmpty(target, error);
          if (error instanceof CopyVerificationError || error instanceof CopyFailedError || error instanceof SchemaMismatchError) throw new CliError(`${error.message}; nothing was written to ${target}`);
          throw error;
        } finally {
          taken.release();
        }
        const seconds = ((Date.now() - started) / 1000).toFixed(1);
        console.log(`copied ${summary.rows} rows of ${summary.tables.length} tables to ${target} in ${seconds} s`);
        for (const { table, rows } of summary.tables) console.log(`  ${table.padEnd(16)} ${rows}`);
        console.log(`verified: the rows of every table, and the last seq and messages of each of the ${summary.threads} threads`);
        console.log(`new epoch ${summary.epoch}: clients will sync afresh when they connect to a node on PostgreSQL`);
        console.log(`next: start the nodes with storage.url (CHATD_STORAGE_URL) set to this database; keep ${file} as a backup`);
      } finally {
        await database.close();
      }
    } finally {
      source.close();
    }
  } finally {
    lock.release();
  }
}

/** On a terminal, one line rewritten in place; otherwise (a log, a pipe) a line at most every 5 s and at the end of each table. */
function progressOnStderr(): CopyProgress {
  const tty = process.stderr.isTTY === true;
  let last = 0;
  return {
    copied(table, done, total, overall) {
      const end = done === total;
      const now = Date.now();
      if (!end && now - last < (tty ? 200 : 5_000)) return;
      last = now;
      const line = `  ${table}: ${done}/${total} rows (${percent(done, total)}), all tables ${percent(overall.done, overall.total)}`;
      if (tty) process.stderr.write(`\r\x1b[K${line}${end ? '\n' : ''}`);
      else process.stderr.write(`${line}\n`);
    },
  };
}

function percent(done: number, total: number): string {
  return `${total === 0 ? 100 : Math.floor((done / total) * 100)}%`;
}

function notEmpty(target: string, error: TargetNotEmptyError): CliError {
  return new CliError(`${target} is not empty (${error.counts.map((c) => `${c.table}: ${c.rows}`).join(', ')} rows): copy into a new, empty database (createdb), nothing was written`);
}
