import pg from 'pg';
import { redactUrl } from '../../redact-url.js';
import { LatencyWindow, type LatencySummary } from '../../latency.js';
import { StorageStartError, StorageUnavailableError } from '../errors.js';
import { PgWriteBatcher, timedSql } from './batcher.js';
import { type Checkout, checkout } from './checkout.js';
import { isConnectionLoss } from './connection-loss.js';
import { loadPostgresMigrations, migratePostgres } from './migrate.js';
import type { Sql } from './sql.js';

export interface PostgresOptions {
  /** Connections in the pool: the write batch holds one, reads share the rest. */
  readonly poolSize?: number;
  /** How long a connection attempt may take before it fails (start-up, and each reconnect). */
  readonly connectTimeoutMs?: number;
  /** The longest a statement may wait for its answer before the connection counts as lost (30 s; 0: no limit, for a copy's large statements). */
  readonly queryTimeoutMs?: number;
  /** False for tools that must not change the schema; true by default. */
  readonly migrate?: boolean;
  /** Hears of each migration applied. */
  readonly applied?: (name: string) => void;
}

/** One PostgreSQL database as the storage classes use it. */
export interface PgDatabase {
  readonly pool: pg.Pool;
  /** Every write goes through it: group commit. */
  readonly writes: PgWriteBatcher;
  /** One statement outside any transaction. */
  readonly read: Sql;
  /** Several reads that see one snapshot (REPEATABLE READ, READ ONLY). */
  snapshot<T>(work: (sql: Sql) => Promise<T>): Promise<T>;
  /** The URL without its password: for logs, errors, /readyz. */
  readonly label: string;
  /** The database's epoch (meta): clients that see it change sync afresh. */
  epoch(): Promise<string>;
  ping(): Promise<boolean>;
  /** Recent round trips of every statement (reads and writes). */
  latency(): LatencySummary | undefined;
  close(): Promise<void>;
}

/** int8 as a JS number: ids, seqs and Unix ms all stay far below 2^53. */
const INT8_OID = 20;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/**
 * Connects to PostgreSQL at `url`, checks it answers, and migrates its schema
 * (under an advisory lock, so several nodes starting together migrate once).
 * Anything that stops that throws a StorageStartError naming the URL without
 * its password.
 */
export async function openPostgres(url: string, options: PostgresOptions = {}): Promise<PgDatabase> {
  const label = redactUrl(url);
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
    // A server that goes silent (its host gone, a partition, a frozen process) sends no reset: without these a
    // write batch would wait for the kernel's keepalive, about two hours, and every later write behind it.
    query_timeout: options.queryTimeoutMs === undefined ? 30_000 : options.queryTimeoutMs || undefined,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    types,
  });
  // An idle pooled connection that dies (the server restarted) must not crash the process: the pool drops it
  // and the next checkout connects again.
  pool.on('error', () => {});
  const latency = new LatencyWindow();
  const read = timedSql(
    (text, values) =>
      pool.query(text, values as unknown[]).catch((error: unknown) => {
        throw isConnectionLoss(error) ? new StorageUnavailableError(`PostgreSQL is unavailable: ${(error as Error).message}`, { cause: error }) : error;
      }),
    latency,
  );
  try {
    const taken = await checkout(pool);
    const client = taken.client;
    try {
      const version = (await client.query<{ server_version_num: string }>('SHOW server_version_num')).rows[0]?.server_version_num;
      if (Number(version) < 130000) throw new StorageStartError(`PostgreSQL at ${label} is version ${version}: chatd needs 13 or newer`);
      if (options.migrate !== false) {
        const { applied } = await migratePostgres(timedSql((text, values) => client.query(text, values as unknown[]), latency), loadPostgresMigrations(), label);
        for (const name of applied) options.applied?.(name);
      }
    } finally {
      taken.release();
    }
  } catch (error) {
    await pool.end().catch(() => {});
    if (error instanceof StorageStartError) throw error;
    throw new StorageStartError(`cannot use PostgreSQL at ${label}: ${(error as Error).message}`, { cause: error });
  }
  const writes = new PgWriteBatcher(pool, latency);
  return {
    pool,
    writes,
    read,
    label,
    async snapshot<T>(work: (sql: Sql) => Promise<T>): Promise<T> {
      let taken: Checkout;
      try {
        taken = await checkout(pool);
      } catch (error) {
        throw new StorageUnavailableError(`PostgreSQL is unavailable: ${(error as Error).message}`, { cause: error });
      }
      const client = taken.client;
      const sql = timedSql((text, values) => client.query(text, values as unknown[]), latency);
      let broken: Error | undefined;
      try {
        await sql.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        const value = await work(sql);
        await sql.query('COMMIT');
        return value;
      } catch (error) {
        if (isConnectionLoss(error)) {
          broken = error as Error;
          throw new StorageUnavailableError(`PostgreSQL is unavailable: ${(error as Error).message}`, { cause: error });
        }
        await sql.query('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        taken.release(broken);
      }
    },
    async epoch() {
      const row = (await read.query<{ value: string }>(`SELECT value FROM meta WHERE key = 'epoch'`)).rows[0];
      if (!row) throw new StorageStartError(`the database at ${label} has no epoch: it was not created by chatd`);
      return row.value;
    },
    async ping() {
      try {
        await read.query('SELECT 1');
        return true;
      } catch {
        return false;
      }
    },
    latency: () => latency.summary(),
    async close() {
      await writes.settle();
      await pool.end();
    },
  };
}
