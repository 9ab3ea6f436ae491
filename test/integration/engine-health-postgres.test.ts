import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { checkEngines, postgresEngine } from '../../src/app/engines.js';
import { type PgDatabase, openPostgres } from '../../src/storage/postgres/database.js';
import { type PgServer, startPostgres } from '../helpers/postgres.js';

/** The health /readyz and /metrics report for PostgreSQL, against a real server that goes away and comes back. */
describe('PostgreSQL engine health', () => {
  let server: PgServer;
  let db: PgDatabase;
  before(async () => {
    server = await startPostgres();
    db = await openPostgres(await server.freshDatabase(), { poolSize: 2, connectTimeoutMs: 1_000 });
  });
  after(async () => {
    await db?.close();
    await server?.stop();
  });

  it('is up with the latency of the round trips so far, down while the server is gone, and up again when it is back', async () => {
    const engine = postgresEngine(db);
    const [up] = await checkEngines([engine]);
    assert.equal(up?.ok, true);
    assert.equal(up?.engine, 'postgres');
    assert.ok((up?.latency?.count ?? 0) > 0, 'the migration and the ping were timed');
    assert.ok((up?.latency?.p99Ms ?? -1) >= (up?.latency?.p50Ms ?? 0));

    await server.kill();
    const started = Date.now();
    const [down] = await checkEngines([engine]);
    assert.equal(down?.ok, false);
    assert.ok(Date.now() - started < 2_500, 'answered within the ping timeout');

    await server.start();
    // The pool reconnects by itself at the next checkout.
    const [back] = await checkEngines([engine]);
    assert.equal(back?.ok, true);
  });
});
