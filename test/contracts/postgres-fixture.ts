import { after } from 'node:test';
import { type PgDatabase, openPostgres } from '../../src/storage/postgres/database.js';
import { type PgServer, startPostgres } from '../helpers/postgres.js';

/**
 * What a `*-postgres.test.ts` contract runner needs: one real PostgreSQL per
 * test file (started on first use, stopped after the file's tests) and a
 * fresh, migrated database per call — each contract case gets its own, as
 * the SQLite runners get a fresh `:memory:` database.
 */
let server: Promise<PgServer> | undefined;
const opened: PgDatabase[] = [];

after(async () => {
  for (const db of opened.splice(0)) await db.close().catch(() => {});
  await (await server)?.stop();
});

export async function postgresServer(): Promise<PgServer> {
  server ??= startPostgres();
  return server;
}

/** A fresh, migrated database on this file's server; closed after the file's tests. */
export async function freshPostgres(options: { poolSize?: number } = {}): Promise<PgDatabase> {
  const url = await (await postgresServer()).freshDatabase();
  const db = await openPostgres(url, { poolSize: options.poolSize ?? 4 });
  opened.push(db);
  return db;
}

/** A second connection pool on the same database, as another node has: for races between nodes. */
export async function anotherNode(db: PgDatabase): Promise<PgDatabase> {
  const url = (await postgresServer()).url(db.label.split('/').pop() as string);
  const other = await openPostgres(url, { poolSize: 4 });
  opened.push(other);
  return other;
}
