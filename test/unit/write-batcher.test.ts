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

  describe('lazy writes (delivered cursors)', () => {
    /** The connection's synchronous level as a write sees it inside its transaction: 2 = FULL, 1 = NORMAL. */
    const level = (db: Database.Database): number => db.pragma('synchronous', { simple: true }) as number;

    it('ride in the transaction of a durable write that comes within the delay, at the durable level', async () => {
      const { db } = open();
      db.pragma('synchronous = FULL');
      const batcher = new WriteBatcher(db, { lazyDelayMs: 60_000 });
      const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
      const seen: Array<[string, number]> = [];
      let settled = false;
      const lazy = batcher.submit(() => (seen.push(['lazy', level(db)]), insert.run('cursor')), 'lazy').finally(() => (settled = true));
      // A later turn: the lazy write is waiting for its timer when the durable one comes.
      await new Promise((done) => setImmediate(done));
      assert.equal(batcher.totals.transactions, 0, 'a lazy write alone does not commit at the next turn');
      assert.equal(settled, false, 'nor is it answered before it commits');
      const durable = batcher.submit(() => (seen.push(['durable', level(db)]), insert.run('message')));
      await Promise.all([lazy, durable]);
      assert.deepEqual(seen, [['lazy', 2], ['durable', 2]], 'in submission order, in one fsynced transaction');
      assert.deepEqual([batcher.totals.transactions, batcher.totals.writes], [1, 2]);
    });

    it('commit together without an fsync when no durable write comes, and the connection is back at FULL after', async () => {
      const { db } = open();
      db.pragma('synchronous = FULL');
      const batcher = new WriteBatcher(db, { lazyDelayMs: 1 });
      const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
      const levels: number[] = [];
      await Promise.all(['a', 'b'].map((v) => batcher.submit(() => (levels.push(level(db)), insert.run(v)), 'lazy')));
      assert.deepEqual(levels, [1, 1], 'NORMAL: committed, fsynced by a later durable commit or checkpoint');
      assert.equal(batcher.totals.transactions, 1);
      assert.equal(level(db), 2);
      await batcher.submit(() => levels.push(level(db)));
      assert.equal(levels[2], 2, 'the next durable write is fsynced again');
    });

    it('on a database set to NORMAL, run as every write does', async () => {
      const { db } = open();
      db.pragma('synchronous = NORMAL');
      const batcher = new WriteBatcher(db, { lazyDelayMs: 1 });
      const levels: number[] = [];
      await batcher.submit(() => levels.push(level(db)), 'lazy');
      assert.deepEqual([levels, level(db)], [[1], 1]);
    });

    it('go at the next turn when asked (a shutdown settling the writes)', async () => {
      const { db } = open();
      const batcher = new WriteBatcher(db, { lazyDelayMs: 60_000 });
      const lazy = batcher.submit(() => 'stored', 'lazy');
      batcher.flushNextTurn();
      assert.equal(await lazy, 'stored');
      assert.equal(batcher.pending, 0);
    });

    it('a failing lazy write rejects alone and leaves the connection at FULL', async () => {
      const { db } = open();
      db.pragma('synchronous = FULL');
      const batcher = new WriteBatcher(db, { lazyDelayMs: 1 });
      const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
      const results = await Promise.allSettled([
        batcher.submit(() => insert.run('same'), 'lazy'),
        batcher.submit(() => insert.run('same'), 'lazy'),
      ]);
      assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected']);
      assert.equal(level(db), 2);
    });

    it('waiting beyond one batch, all go in full batches, with no empty transaction, when a durable write comes after', async () => {
      const { db } = open();
      const batcher = new WriteBatcher(db, { maxBatch: 2, lazyDelayMs: 1 });
      const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
      const lazy = ['a', 'b', 'c'].map((v) => batcher.submit(() => insert.run(v), 'lazy'));
      // The timer's batch takes two; the third waits for the next turn, where the durable write joins it.
      await lazy[0];
      await Promise.all([...lazy, batcher.submit(() => insert.run('d'))]);
      // Any flush scheduled meanwhile has run by the next turn's end.
      for (let turn = 0; turn < 2; turn++) await new Promise((done) => setImmediate(done));
      assert.deepEqual(db.prepare('SELECT v FROM t ORDER BY id').pluck().all(), ['a', 'b', 'c', 'd']);
      assert.deepEqual([batcher.totals.transactions, batcher.totals.writes], [2, 4]);
      assert.equal(batcher.pending, 0);
    });

    it('when their transaction is lost whole (disk full), reject, store nothing, and the connection is back at FULL', async () => {
      const { db } = open();
      db.pragma('synchronous = FULL');
      const batcher = new WriteBatcher(db, { lazyDelayMs: 1 });
      const insert = db.prepare('INSERT INTO t (v, b) VALUES (?, ?)');
      db.pragma(`max_page_count = ${(db.pragma('page_count', { simple: true }) as number) + 30}`);
      const results = await Promise.allSettled([
        batcher.submit(() => insert.run('small', Buffer.alloc(1000)), 'lazy'),
        batcher.submit(() => insert.run('huge', Buffer.alloc(200_000)), 'lazy'),
      ]);
      assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected']);
      assert.equal(db.prepare('SELECT count(*) FROM t').pluck().get(), 0);
      assert.equal(level(db), 2);
    });
  });
});
