import type { Sql } from './sql.js';

/**
 * The schema version of a PostgreSQL database: the highest migration applied,
 * 0 when chatd never migrated it (no schema_migrations table, or no row).
 * Reads only: the admin CLI looks before deciding whether it may use the schema.
 */
export async function postgresSchemaVersion(sql: Sql): Promise<number> {
  const { rows } = await sql.query<{ present: boolean }>(`SELECT to_regclass('schema_migrations') IS NOT NULL AS present`);
  if (rows[0]?.present !== true) return 0;
  const versions = await sql.query<{ version: number | null }>('SELECT max(version) AS version FROM schema_migrations');
  return Number(versions.rows[0]?.version ?? 0);
}

/** The whole database's size on disk, in bytes (tables, indexes, TOAST), as PostgreSQL counts it. */
export async function postgresDatabaseBytes(sql: Sql): Promise<number> {
  const { rows } = await sql.query<{ bytes: number }>('SELECT pg_database_size(current_database()) AS bytes');
  return Number(rows[0]?.bytes ?? 0);
}
