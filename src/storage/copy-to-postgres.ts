import type pg from 'pg';
import type { Db } from './database.js';

/**
 * `chatd db copy`: the rows of a SQLite database into an empty PostgreSQL
 * database of the same schema (migrations/postgres/0001 mirrors SQLite's
 * tables, columns and ids), ids kept. Everything happens in ONE PostgreSQL
 * transaction that commits only after the copy verified itself, so a copy
 * that fails half-way — or finds a difference — leaves the target as empty
 * as it was, and can simply be run again. The SQLite side is read in one
 * read transaction: one snapshot, whatever else reads the file meanwhile.
 */

/**
 * Every table of the SQLite schema, parents before children (foreign keys
 * are checked row by row as the rows go in). A table missing here is refused
 * rather than left behind: see unknownTables.
 */
export const COPIED_TABLES = [
  'users',
  'devices',
  'threads',
  'thread_members',
  'device_cursors',
  'contacts',
  'messages',
  // Delete for me (migration 0015; the message-change columns go with messages' other columns).
  'hidden_messages',
  'inbox',
  'push_counters',
  'push_queue',
  'push_threads',
  'account_events',
  'invites',
  'account_keys',
  'device_messages',
  // Attachments (migration 0014; messages.attachments goes with its table's other columns).
  'uploads',
  'attachment_refs',
  'blob_orphans',
  'server_secrets',
] as const;

/** SQLite's own tables and meta, whose one row (the epoch) the copy replaces by a new one. */
const NOT_COPIED = new Set([
  'meta',
  'sqlite_sequence',
  // The search index (migrations/0016_search.sql) and FTS5's shadow tables: PostgreSQL's trigger indexes each copied message.
  ...['message_words', 'message_trigrams'].flatMap((index) => [index, ...['data', 'idx', 'docsize', 'config', 'content'].map((shadow) => `${index}_${shadow}`)]),
]);

/** PostgreSQL takes at most 65,535 parameters per statement; fewer rows per INSERT also bound the memory a batch holds. */
const MAX_PARAMETERS = 30_000;
const MAX_BATCH_ROWS = 2_000;

export interface CopyProgress {
  /** After each batch, and once at the end of each table (done === total). */
  copied(table: string, done: number, total: number, overall: { readonly done: number; readonly total: number }): void;
}

export interface CopySummary {
  readonly tables: ReadonlyArray<{ readonly table: string; readonly rows: number }>;
  readonly rows: number;
  /** Threads whose last seq was compared on both sides. */
  readonly threads: number;
  /** The target's new epoch: clients that see it sync afresh. */
  readonly epoch: string;
}

/** The target holds rows already: copying into it would mix two servers' ids. Nothing was written. */
export class TargetNotEmptyError extends Error {
  constructor(readonly counts: ReadonlyArray<{ readonly table: string; readonly rows: number }>) {
    super(`the target database is not empty (${counts.map((count) => `${count.table}: ${count.rows} rows`).join(', ')})`);
    this.name = 'TargetNotEmptyError';
  }
}

/** The copy read back something else than it read: rolled back, nothing was written. */
export class CopyVerificationError extends Error {
  constructor(readonly differences: readonly string[]) {
    super(`the copy differs from the source, so it was rolled back: ${differences.slice(0, 10).join('; ')}${differences.length > 10 ? ` (and ${differences.length - 10} more)` : ''}`);
    this.name = 'CopyVerificationError';
  }
}

/** PostgreSQL refused rows of a table (a constraint, a value it cannot store): rolled back, nothing was written. */
export class CopyFailedError extends Error {
  constructor(
    readonly table: string,
    cause: unknown,
  ) {
    const detail = (cause as { detail?: unknown }).detail;
    super(`copying ${table} failed: ${(cause as Error).message}${typeof detail === 'string' ? ` (${detail})` : ''}`, { cause });
    this.name = 'CopyFailedError';
  }
}

/** The two schemas do not match (a migration on one side only): nothing was written. */
export class SchemaMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SchemaMismatchError';
  }
}

/**
 * Tables of the SQLite database this copy does not know: a migration that
 * added one must add it to COPIED_TABLES (and to PostgreSQL's migrations),
 * or a copy would silently leave its rows behind.
 */
export function unknownTables(source: Db): string[] {
  const known = new Set<string>(COPIED_TABLES);
  return (source.prepare(`SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'`).all() as Array<{ name: string }>)
    .map((row) => row.name)
    .filter((name) => !known.has(name) && !NOT_COPIED.has(name));
}

/** Runs the copy on `client` (a connection of its own: the whole copy is one transaction on it). */
export async function copyToPostgres(source: Db, client: pg.ClientBase, progress: CopyProgress): Promise<CopySummary> {
  const unknown = unknownTables(source);
  if (unknown.length > 0) throw new SchemaMismatchError(`the SQLite database has table(s) this chatd cannot copy: ${unknown.join(', ')}`);
  // One snapshot of the source for counting, copying and verifying.
  source.exec('BEGIN');
  try {
    await client.query('BEGIN');
    try {
      const summary = await copyInTransaction(source, client, progress);
      await client.query('COMMIT');
      return summary;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    }
  } finally {
    source.exec('COMMIT');
  }
}

async function copyInTransaction(source: Db, client: pg.ClientBase, progress: CopyProgress): Promise<CopySummary> {
  const targetTypes = await columnTypes(client);
  const nonEmpty: Array<{ table: string; rows: number }> = [];
  for (const table of COPIED_TABLES) {
    const rows = await countTarget(client, table);
    if (rows > 0) nonEmpty.push({ table, rows });
  }
  if (nonEmpty.length > 0) throw new TargetNotEmptyError(nonEmpty);

  const totals = COPIED_TABLES.map((table) => ({ table, rows: countSource(source, table) }));
  const overall = { done: 0, total: totals.reduce((sum, entry) => sum + entry.rows, 0) };
  for (const { table, rows: total } of totals) {
    const types = targetTypes.get(table);
    if (!types) throw new SchemaMismatchError(`the PostgreSQL database has no table ${table}: its schema is older than this chatd's`);
    try {
      await copyTable(source, client, table, types, total, (done) => {
        progress.copied(table, done, total, { done: overall.done + done, total: overall.total });
      });
    } catch (error) {
      // PostgreSQL's own refusals carry a SQLSTATE; a lost connection or a schema mismatch goes up as it is.
      if (typeof (error as { code?: unknown }).code === 'string' && /^[0-9A-Z]{5}$/.test((error as { code: string }).code) && !/^08/.test((error as { code: string }).code)) {
        throw new CopyFailedError(table, error);
      }
      throw error;
    }
    overall.done += total;
    // The last batch reported a table with rows; an empty one is reported here.
    if (total === 0) progress.copied(table, 0, 0, overall);
  }
  await moveSequences(source, client);
  const threads = await verify(source, client, totals);
  // A new epoch: the devices that knew the SQLite server drop their cursors and sync afresh from this database.
  const epoch = (
    await client.query<{ value: string }>(`UPDATE meta SET value = md5(random()::text || clock_timestamp()::text) WHERE key = 'epoch' RETURNING value`)
  ).rows[0]?.value;
  if (epoch === undefined) throw new SchemaMismatchError('the PostgreSQL database has no epoch in meta: it was not created by chatd');
  return { tables: totals, rows: overall.total, threads, epoch };
}

/** column → PostgreSQL data_type ('bigint', 'boolean', 'bytea', 'text'), per table of the current schema. */
async function columnTypes(client: pg.ClientBase): Promise<Map<string, Map<string, string>>> {
  const { rows } = await client.query<{ table_name: string; column_name: string; data_type: string }>(
    'SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema()',
  );
  const tables = new Map<string, Map<string, string>>();
  for (const row of rows) {
    const columns = tables.get(row.table_name) ?? new Map<string, string>();
    columns.set(row.column_name, row.data_type);
    tables.set(row.table_name, columns);
  }
  return tables;
}

/**
 * The copied tables that hold rows in the target, read before anything is
 * written to it (tables that do not exist yet count as empty): a target that
 * holds rows is refused before its schema is touched, so a `--to` pointed at a
 * live deployment by mistake changes nothing there.
 */
export async function nonEmptyTargetTables(client: pg.ClientBase): Promise<Array<{ table: string; rows: number }>> {
  const { rows: existing } = await client.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ANY($1::text[])`,
    [COPIED_TABLES],
  );
  const present = new Set(existing.map((row) => row.table_name));
  const nonEmpty: Array<{ table: string; rows: number }> = [];
  // In the copy's order (users first), whatever order the catalog lists them in: the message reads the same each time.
  for (const table of COPIED_TABLES.filter((name) => present.has(name))) {
    const rows = await countTarget(client, table);
    if (rows > 0) nonEmpty.push({ table, rows });
  }
  return nonEmpty;
}

async function countTarget(client: pg.ClientBase, table: string): Promise<number> {
  return Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${quote(table)}`)).rows[0]?.n ?? 0);
}

function countSource(source: Db, table: string): number {
  return (source.prepare(`SELECT count(*) AS n FROM ${quote(table)}`).get() as { n: number }).n;
}

/** Reads the table in primary-key order and inserts it in multi-row INSERTs, ids as they are. */
async function copyTable(
  source: Db,
  client: pg.ClientBase,
  table: string,
  types: ReadonlyMap<string, string>,
  total: number,
  copied: (done: number) => void,
): Promise<void> {
  if (total === 0) return;
  const statement = source.prepare(`SELECT * FROM ${quote(table)}`).raw(true);
  const columns = statement.columns().map((column) => column.name);
  const missing = columns.filter((column) => !types.has(column));
  if (missing.length > 0) {
    throw new SchemaMismatchError(`the PostgreSQL table ${table} lacks the column(s) ${missing.join(', ')}: its schema is older than the SQLite database's`);
  }
  const convert = columns.map((column) => converterFor(types.get(column) as string));
  const perBatch = Math.max(1, Math.min(MAX_BATCH_ROWS, Math.floor(MAX_PARAMETERS / columns.length)));
  const head = `INSERT INTO ${quote(table)} (${columns.map(quote).join(', ')}) VALUES `;
  let batch: unknown[] = [];
  let rows = 0;
  let done = 0;
  const flush = async (): Promise<void> => {
    const tuples: string[] = [];
    for (let row = 0; row < rows; row++) {
      tuples.push(`(${columns.map((_, column) => `$${row * columns.length + column + 1}`).join(', ')})`);
    }
    await client.query(head + tuples.join(', '), batch);
    done += rows;
    batch = [];
    rows = 0;
    copied(done);
  };
  // The iterator keeps the SQLite statement open across the awaits: nothing else uses this connection meanwhile.
  for (const row of statement.iterate() as IterableIterator<unknown[]>) {
    for (let column = 0; column < row.length; column++) batch.push((convert[column] as (value: unknown) => unknown)(row[column]));
    rows++;
    if (rows === perBatch) await flush();
  }
  if (rows > 0) await flush();
}

/** SQLite's 0/1 flags become booleans; integers, text and blobs (Buffers) go as they are. */
function converterFor(type: string): (value: unknown) => unknown {
  if (type === 'boolean') return (value) => (value === null ? null : value !== 0);
  return (value) => value;
}

/**
 * Each identity moves past the largest id copied — and past SQLite's
 * AUTOINCREMENT counter, which is larger when the newest rows were deleted:
 * an id is never given twice, on either engine.
 */
async function moveSequences(source: Db, client: pg.ClientBase): Promise<void> {
  const counters = new Map<string, number>();
  const hasSequences = source.prepare(`SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_sequence'`).get() !== undefined;
  if (hasSequences) {
    for (const row of source.prepare('SELECT name, seq FROM sqlite_sequence').all() as Array<{ name: string; seq: number }>) counters.set(row.name, row.seq);
  }
  const { rows } = await client.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.columns WHERE table_schema = current_schema() AND column_name = 'id' AND is_identity = 'YES'`,
  );
  for (const { table_name: table } of rows) {
    if (!(COPIED_TABLES as readonly string[]).includes(table)) continue;
    await client.query(
      `SELECT setval(pg_get_serial_sequence($1, 'id'), greatest(coalesce(max(id), 0), $2::bigint, 1), greatest(coalesce(max(id), 0), $2::bigint) > 0) FROM ${quote(table)}`,
      [table, counters.get(table) ?? 0],
    );
  }
}

/**
 * Reads the copy back inside its own transaction: rows per table, and per
 * thread its last seq, its messages' largest seq and their number (a seq
 * lost or doubled would show there). Any difference throws, and the caller
 * rolls everything back.
 */
async function verify(source: Db, client: pg.ClientBase, totals: ReadonlyArray<{ table: string; rows: number }>): Promise<number> {
  const differences: string[] = [];
  for (const { table, rows } of totals) {
    const copied = await countTarget(client, table);
    if (copied !== rows) differences.push(`${table}: ${rows} rows in SQLite, ${copied} in PostgreSQL`);
  }
  const threadsQuery = `SELECT t.id AS id, t.last_seq AS last_seq, m.max_seq AS max_seq, m.messages AS messages
    FROM threads t LEFT JOIN (SELECT thread_id, max(seq) AS max_seq, count(*) AS messages FROM messages GROUP BY thread_id) m ON m.thread_id = t.id`;
  type ThreadRow = { id: number | string; last_seq: number | string; max_seq: number | string | null; messages: number | string | null };
  const shape = (row: ThreadRow): string => `last_seq ${Number(row.last_seq)}, largest message seq ${row.max_seq === null ? '-' : Number(row.max_seq)}, ${Number(row.messages ?? 0)} messages`;
  const expected = new Map((source.prepare(threadsQuery).all() as ThreadRow[]).map((row) => [Number(row.id), shape(row)]));
  const actual = new Map((await client.query<ThreadRow>(threadsQuery)).rows.map((row) => [Number(row.id), shape(row)]));
  for (const [id, want] of expected) {
    const got = actual.get(id);
    if (got !== want) differences.push(`thread ${id}: ${want} in SQLite, ${got ?? 'missing'} in PostgreSQL`);
  }
  if (differences.length > 0) throw new CopyVerificationError(differences);
  return expected.size;
}

function quote(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
