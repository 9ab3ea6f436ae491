import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { StorageStartError } from '../errors.js';
import type { Sql } from './sql.js';

export const POSTGRES_MIGRATIONS_DIR = fileURLToPath(new URL('../../../migrations/postgres/', import.meta.url));

export interface PgMigration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** The numbered files of migrations/postgres/ (NNNN_what.sql), in order. Numbers need not follow each other: 0002 was never used (the helper that would have written it needed no migration). */
export function loadPostgresMigrations(dir = POSTGRES_MIGRATIONS_DIR): PgMigration[] {
  return readdirSync(dir)
    .filter((name) => /^\d{4}_.+\.sql$/.test(name))
    .sort()
    .map((name) => ({ version: Number(name.slice(0, 4)), name, sql: readFileSync(`${dir}${name}`, 'utf8') }));
}

/** Any fixed number: the advisory lock every node takes while it migrates, so that nodes starting together migrate once. */
const MIGRATION_LOCK = 0x63686174; // "chat"

/**
 * Brings the schema up to date in one transaction (PostgreSQL's DDL is
 * transactional: a failed migration leaves the schema as it was), under an
 * advisory lock: a node that starts while another migrates waits, then finds
 * nothing to do. A schema newer than this chatd knows is refused: an older
 * node must not write to it (upgrades go forward, node by node).
 */
export async function migratePostgres(sql: Sql, migrations: readonly PgMigration[], label: string): Promise<{ applied: string[] }> {
  await sql.query('BEGIN');
  try {
    await sql.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await sql.query('CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)');
    const done = new Set((await sql.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((row) => Number(row.version)));
    const latest = migrations.reduce((max, migration) => Math.max(max, migration.version), 0);
    const newest = Math.max(0, ...done);
    if (newest > latest) {
      throw new StorageStartError(`the PostgreSQL schema at ${label} is version ${newest} and this chatd knows only up to ${latest}: upgrade this node to the version the others run`);
    }
    const applied: string[] = [];
    for (const migration of migrations) {
      if (done.has(migration.version)) continue;
      await sql.query(migration.sql);
      await sql.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [migration.version, migration.name, Date.now()]);
      applied.push(migration.name);
    }
    await sql.query('COMMIT');
    return { applied };
  } catch (error) {
    await sql.query('ROLLBACK').catch(() => {});
    throw error;
  }
}
