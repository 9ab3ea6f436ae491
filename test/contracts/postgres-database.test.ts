import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StorageStartError, StorageUnavailableError } from '../../src/storage/errors.js';
import { openPostgres } from '../../src/storage/postgres/database.js';
import { loadPostgresMigrations } from '../../src/storage/postgres/migrate.js';
import type { BatchedUnit } from '../../src/storage/postgres/batcher.js';
import { freeLocalPort } from '../helpers/engine-process.js';
import { freshPostgres, postgresServer } from './postgres-fixture.js';

/** The PostgreSQL engine's own promises (what every storage class builds on), against a real server. */
describe('PostgreSQL database', () => {
  it('migrates once when several nodes start at the same time', async () => {
    const url = await (await postgresServer()).freshDatabase();
    const nodes = await Promise.all([1, 2, 3].map(() => openPostgres(url, { poolSize: 2 })));
    try {
      const rows = (await nodes[0]!.read.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version')).rows;
      assert.deepEqual(
        rows.map((row) => row.version),
        loadPostgresMigrations().map((migration) => migration.version),
      );
      assert.match(await nodes[1]!.epoch(), /^[0-9a-f]{32}$/);
      assert.equal(await nodes[2]!.epoch(), await nodes[1]!.epoch());
    } finally {
      for (const node of nodes) await node.close();
    }
  });

  it('returns bigint columns as numbers', async () => {
    const db = await freshPostgres();
    const row = (await db.read.query<{ n: number }>('SELECT 9007199254740991::bigint AS n')).rows[0];
    assert.equal(row?.n, Number.MAX_SAFE_INTEGER);
  });

  it('commits the units of one turn in one transaction; a unit that throws fails alone', async () => {
    const db = await freshPostgres();
    await db.read.query('CREATE TABLE t (n integer PRIMARY KEY)');
    const before = db.writes.totals.transactions;
    const results = await Promise.allSettled(
      [1, 2, 3, 2, 5].map((n) =>
        db.writes.submit(async (sql) => {
          await sql.query('INSERT INTO t (n) VALUES ($1)', [n]);
          return n;
        }),
      ),
    );
    assert.deepEqual(
      results.map((result) => result.status),
      ['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled'],
    );
    const stored = (await db.read.query<{ n: number }>('SELECT n FROM t ORDER BY n')).rows.map((row) => row.n);
    assert.deepEqual(stored, [1, 2, 3, 5]);
    // One transaction for the batch (rolled back at the duplicate), then each unit alone: counted as one.
    assert.equal(db.writes.totals.transactions - before, 1);

    const together = db.writes.totals.transactions;
    await Promise.all([10, 11, 12].map((n) => db.writes.submit((sql) => sql.query('INSERT INTO t (n) VALUES ($1)', [n]))));
    assert.equal(db.writes.totals.transactions - together, 1, 'three units of one turn: one transaction');
  });

  it('runs the inputs of a batched unit in one call, in the same transaction as the plain units', async () => {
    const db = await freshPostgres();
    await db.read.query('CREATE TABLE t (n integer PRIMARY KEY)');
    const calls: number[][] = [];
    const insertMany: BatchedUnit<number, number> = {
      name: 'insert-many',
      async run(sql, inputs) {
        calls.push([...inputs]);
        const { rows } = await sql.query<{ n: number }>('INSERT INTO t (n) SELECT unnest($1::int[]) RETURNING n', [inputs]);
        return rows.map((row) => row.n * 10);
      },
    };
    const plain = db.writes.submit((sql) => sql.query('INSERT INTO t (n) VALUES (100)'));
    const outputs = await Promise.all([1, 2, 3].map((n) => db.writes.submitBatched(insertMany, n)));
    await plain;
    assert.deepEqual(outputs, [10, 20, 30]);
    assert.deepEqual(calls, [[1, 2, 3]]);
  });

  it('a connection terminated under a batch or a snapshot fails that work as unavailable, and the process carries on', async () => {
    // pg emits 'error' on a taken connection whose backend dies: with no listener, that ends the process (this test's).
    const db = await freshPostgres();
    const terminate = async (): Promise<void> => {
      for (;;) {
        const { rowCount } = await db.read.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state = 'active' AND query = 'SELECT pg_sleep(30)' AND pid <> pg_backend_pid()`);
        if (rowCount > 0) return;
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    // Handlers first: the work fails while terminate() still awaits.
    const batch = assert.rejects(
      db.writes.submit((sql) => sql.query('SELECT pg_sleep(30)')),
      (error: unknown) => error instanceof StorageUnavailableError,
    );
    await terminate();
    await batch;
    const snapshot = assert.rejects(
      db.snapshot((sql) => sql.query('SELECT pg_sleep(30)')),
      (error: unknown) => error instanceof StorageUnavailableError,
    );
    await terminate();
    await snapshot;
    // The pool gives fresh connections afterwards.
    assert.equal(await db.writes.submit(async (sql) => (await sql.query<{ n: number }>('SELECT 1::bigint AS n')).rows[0]?.n), 1);
  });

  it('refuses to start on an unreachable server, naming the URL without its password', async () => {
    const port = await freeLocalPort();
    await assert.rejects(openPostgres(`postgres://chatd:s3cret@127.0.0.1:${port}/chatd`, { connectTimeoutMs: 2000 }), (error: unknown) => {
      assert.ok(error instanceof StorageStartError);
      assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port}/chatd`));
      assert.doesNotMatch(error.message, /s3cret/);
      return true;
    });
  });

  it('fails writes with a retryable error while the server is down, and recovers by itself when it is back', async () => {
    const server = await postgresServer();
    const db = await freshPostgres();
    await db.read.query('CREATE TABLE t (n integer PRIMARY KEY)');
    await db.writes.submit((sql) => sql.query('INSERT INTO t (n) VALUES (1)'));
    await server.kill();
    await assert.rejects(
      db.writes.submit((sql) => sql.query('INSERT INTO t (n) VALUES (2)')),
      (error: unknown) => error instanceof StorageUnavailableError,
    );
    assert.equal(await db.ping(), false);
    await server.start();
    // The pool's dead connections are dropped as they fail; a unit fails at most once more before a fresh one works.
    let stored = false;
    for (let attempt = 0; attempt < 20 && !stored; attempt++) {
      try {
        await db.writes.submit((sql) => sql.query('INSERT INTO t (n) VALUES (3)'));
        stored = true;
      } catch (error) {
        assert.ok(error instanceof StorageUnavailableError, String(error));
      }
    }
    assert.ok(stored, 'a write succeeds once the server is back');
    const rows = (await db.read.query<{ n: number }>('SELECT n FROM t ORDER BY n')).rows.map((row) => row.n);
    assert.deepEqual(rows, [1, 3]);
  });
});
