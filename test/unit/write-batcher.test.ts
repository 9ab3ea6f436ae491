import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { WriteBatcher } from '../../src/storage/write-batcher.js';
import { tempDir } from '../helpers/tmp.js';

function open(): { db: Database.Database; file: string } {
  const file = join(tempDir(), 'batch.db');
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE, b BLOB)');
  return { db, file };
}

describe('WriteBatcher (group commit)', () => {
  it('runs the writes of one turn in one transaction and resolves each after the commit', async () => {
    const { db, file } = open();
    const batcher = new WriteBatcher(db);
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    const commits: number[] = [];
    const results = await Promise.all(
      ['a', 'b', 'c'].map((v) =>
        batcher.submit(() => {
          commits.push(db.prepare('SELECT count(*) AS n FROM t').pluck().get() as number);
          return Number(insert.run(v).lastInsertRowid);
        }),
      ),
    );
    assert.deepEqual(results, [1, 2, 3]);
    assert.deepEqual(commits, [0, 1, 2], 'each write saw the ones before it in the same transaction');
    const totals = batcher.totals;
    assert.deepEqual([totals.transactions, totals.writes], [1, 3], 'counted as one transaction of three writes (GET /metrics)');
    assert.ok(totals.seconds > 0);
    const reader = new Database(file, { readonly: true });
    assert.equal(reader.prepare('SELECT count(*) FROM t').pluck().get(), 3, 'committed when the promises resolved');
    reader.close();
  });

  it('rolls back and rejects a failing write alone; the others commit', async () => {
    const { db } = open();
    const batcher = new WriteBatcher(db);
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    const results = await Promise.allSettled([
      batcher.submit(() => insert.run('x')),
      batcher.submit(() => {
        insert.run('y');
        insert.run('x'); // UNIQUE violation: this write's 'y' must go too
      }),
      batcher.submit(() => insert.run('z')),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.deepEqual(db.prepare('SELECT v FROM t ORDER BY id').pluck().all(), ['x', 'z']);
  });

  it('runs each write once when none throws, and the batch again with savepoints only when one does', async () => {
    const { db } = open();
    const batcher = new WriteBatcher(db);
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    const runs = [0, 0, 0];
    await Promise.all([0, 1, 2].map((i) => batcher.submit(() => ((runs[i] = (runs[i] ?? 0) + 1), insert.run(`a${i}`)))));
    assert.deepEqual(runs, [1, 1, 1]);

    const again = [0, 0];
    const results = await Promise.allSettled([
      batcher.submit(() => ((again[0] = (again[0] ?? 0) + 1), insert.run('b'))),
      batcher.submit(() => ((again[1] = (again[1] ?? 0) + 1), insert.run('a0'))), // UNIQUE violation
    ]);
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected']);
    assert.deepEqual(again, [2, 2], 'the plain run was rolled back and the batch run again');
    assert.deepEqual(db.prepare('SELECT v FROM t ORDER BY id').pluck().all(), ['a0', 'a1', 'a2', 'b'], 'stored once');
  });

  it('when the whole transaction is lost (disk full), rejects every write and stores none', async () => {
    const { db } = open();
    const batcher = new WriteBatcher(db);
    const insert = db.prepare('INSERT INTO t (v, b) VALUES (?, ?)');
    const pages = db.pragma('page_count', { simple: true }) as number;
    db.pragma(`max_page_count = ${pages + 30}`);
    const results = await Promise.allSettled([
      batcher.submit(() => insert.run('small-1', Buffer.alloc(1000))),
      batcher.submit(() => insert.run('huge', Buffer.alloc(200_000))),
      batcher.submit(() => insert.run('small-2', Buffer.alloc(1000))),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['rejected', 'rejected', 'rejected'],
    );
    assert.equal(db.prepare('SELECT count(*) FROM t').pluck().get(), 0, 'nothing stored that was not acknowledged');
  });
});
