import type { Command } from 'commander';
import { redactUrl } from '../redact-url.js';
import type { Config } from '../config/schema.js';
import { type Db, openDatabase, schemaVersion } from '../storage/database.js';
import { StorageStartError } from '../storage/errors.js';
import { openPostgres } from '../storage/postgres/database.js';
import { PostgresSearchStorage } from '../storage/postgres/search.js';
import type { SearchIndexCheck, SearchStorage } from '../storage/ports/search.js';
import { SqliteSearchStorage } from '../storage/sqlite/search.js';
import { DatabaseInUseError, takeExclusively } from '../storage/vacuum.js';
import { CliError, type DatabaseOptions, examples, requireDatabase, resolveConfig, withDatabaseOptions } from './common.js';

/** The schema version that brought the search index (migrations/0016_search.sql). */
const SEARCH_SCHEMA = 16;

const REBUILD_HINT = 'rebuild it with `chatd db reindex` (on SQLite, stop the server first)';

/** The search index of a SQLite database opened as it is (no repositories: any schema version). */
export function sqliteSearch(db: Db): SearchStorage {
  return new SqliteSearchStorage({
    db,
    read: (work) => db.transaction(work).deferred(),
    transaction: (work) => db.transaction(work).immediate(),
  });
}

/**
 * `chatd db check`'s lines on the search index of a SQLite file; false when
 * it has problems. Older schemas have none to check. FTS5's integrity-check
 * against the messages holds the write lock for seconds on a large database,
 * so it runs only when no other process has the file open (a backup, a
 * stopped server); under a running server, the counts.
 */
export async function printSqliteSearchCheck(db: Db, file: string): Promise<boolean> {
  if (schemaVersion(db) < SEARCH_SCHEMA) {
    console.log(`  search index: none yet (schema older than ${SEARCH_SCHEMA}; \`chatd db migrate\` builds it)`);
    return true;
  }
  let thorough = true;
  try {
    takeExclusively(db, file);
  } catch (error) {
    if (!(error instanceof DatabaseInUseError)) throw error;
    thorough = false;
  }
  const ok = printSearchCheck(await sqliteSearch(db).check({ thorough }));
  if (!thorough) console.log('                (entries counted; the full comparison with the messages runs when no server has the file open, e.g. on a backup)');
  return ok;
}

function printSearchCheck(result: SearchIndexCheck): boolean {
  if (result.ok) {
    console.log(`  search index: ok (${result.indexed} messages indexed)`);
    return true;
  }
  console.log(`  search index: ${result.problems.join('; ')}`);
  console.log(`                ${REBUILD_HINT}`);
  return false;
}

/** A line of progress on stderr: rewritten in place on a terminal, else one line per tenth. */
function progressReporter(): (done: number, total: number) => void {
  let lastTenth = -1;
  let lastDraw = 0;
  return (done, total) => {
    const percent = Math.floor((done / Math.max(total, 1)) * 100);
    const line = `reindex: ${percent}% (${done}/${total} messages)`;
    if (process.stderr.isTTY) {
      if (done === total || Date.now() - lastDraw > 200) {
        lastDraw = Date.now();
        process.stderr.write(`\r${line}\x1b[K${done === total ? '\n' : ''}`);
      }
    } else if (Math.floor(percent / 10) > lastTenth) {
      lastTenth = Math.floor(percent / 10);
      process.stderr.write(`${line}\n`);
    }
  };
}

export function addDbSearchCommands(db: Command): void {
  const reindex = withDatabaseOptions(
    db
      .command('reindex')
      .description('rebuild the search index from the messages, with progress on stderr (SQLite: stop the server first; PostgreSQL: writes wait while it runs)'),
  ).action(async (options: DatabaseOptions) => {
    const config = resolveConfig(options);
    const started = Date.now();
    const { indexed } = config.storage.url !== '' ? await reindexPostgres(config) : await reindexSqlite(config);
    console.log(`search index rebuilt: ${indexed} messages indexed in ${Date.now() - started} ms`);
  });
  examples(reindex, [
    'sudo systemctl stop chatd && chatd db reindex --data /var/lib/chatd && sudo systemctl start chatd',
    'CHATD_STORAGE_URL=postgres://chatd:PASSWORD@db/chatd chatd db reindex',
  ]);
}

async function reindexSqlite(config: Config): Promise<{ indexed: number }> {
  const file = requireDatabase(config);
  const database = openDatabase({ file, synchronous: config.storage.synchronous, busyTimeoutMs: config.storage.busy_timeout_ms, mustExist: true });
  try {
    if (schemaVersion(database) < SEARCH_SCHEMA) throw new CliError(`${file} has no search index yet (schema older than ${SEARCH_SCHEMA}): run \`chatd db migrate\`, which builds it`);
    try {
      takeExclusively(database, file);
    } catch (error) {
      if (!(error instanceof DatabaseInUseError)) throw error;
      throw new CliError(
        `${file} is in use by another process, most likely a running chatd serve: stop it first. ` +
          'The rebuild holds the write lock throughout, and the server could not store messages meanwhile',
      );
    }
    // A deleted message's words must not survive in freed pages (docs/search.md).
    database.pragma('secure_delete = ON');
    return await sqliteSearch(database).rebuild(progressReporter());
  } finally {
    database.close();
  }
}

async function reindexPostgres(config: Config): Promise<{ indexed: number }> {
  let database: Awaited<ReturnType<typeof openPostgres>>;
  try {
    // As it is: a reindex does not upgrade the schema (chatd db migrate does).
    database = await openPostgres(config.storage.url, { poolSize: 2, migrate: false, queryTimeoutMs: 0 });
  } catch (error) {
    if (error instanceof StorageStartError) throw new CliError(error.message);
    throw error;
  }
  try {
    return await new PostgresSearchStorage(database).rebuild(progressReporter());
  } catch (error) {
    throw new CliError(`reindex of ${redactUrl(config.storage.url)} failed: ${(error as Error).message}`);
  } finally {
    await database.close();
  }
}

/** `chatd db check` on PostgreSQL: the search index against the messages (PostgreSQL checks its own pages: amcheck). */
export async function checkPostgresSearch(config: Config): Promise<void> {
  let database: Awaited<ReturnType<typeof openPostgres>>;
  try {
    database = await openPostgres(config.storage.url, { poolSize: 1, migrate: false, queryTimeoutMs: 0 });
  } catch (error) {
    if (error instanceof StorageStartError) throw new CliError(error.message);
    throw error;
  }
  try {
    console.log(database.label);
    const ok = printSearchCheck(await new PostgresSearchStorage(database).check());
    console.log('  pages:        PostgreSQL checks its own (amcheck); back it up with pg_dump');
    if (!ok) throw new CliError(`the search index has problems (see above): ${REBUILD_HINT}`);
  } finally {
    await database.close();
  }
}
