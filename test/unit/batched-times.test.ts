import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { BatchedTimes } from '../../src/services/batched-times.js';
import { WriteBatcher } from '../../src/storage/write-batcher.js';
import { tempDir } from '../helpers/tmp.js';

describe('BatchedTimes', () => {
  it('answers with the latest time set until its commit ends, then with what is stored; a failed write falls back to the row', async () => {
    const db = new Database(join(tempDir(), 'times.db'));
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, at INTEGER)');
    db.exec('INSERT INTO t (id, at) VALUES (1, 10), (2, 10)');
    const update = db.prepare<[number, number]>('UPDATE t SET at = ? WHERE id = ?');
    const stored = (id: number): number => db.prepare('SELECT at FROM t WHERE id = ?').pluck().get(id) as number;
    const batcher = new WriteBatcher(db);
    const times = new BatchedTimes();
    times.set(1, 20, () => batcher.submit(() => update.run(20, 1)));
    times.set(1, 30, () => batcher.submit(() => update.run(30, 1)));
    times.set(2, 40, () =>
      batcher.submit(() => {
        throw new Error('disk full');
      }),
    );
    assert.deepEqual([times.get(1, stored(1)), times.get(2, stored(2))], [30, 40], 'before the commit: the times set');
    assert.deepEqual([stored(1), stored(2)], [10, 10], 'nothing written yet');
    await batcher.submit(() => undefined);
    assert.deepEqual([stored(1), stored(2)], [30, 10]);
    assert.deepEqual([times.get(1, stored(1)), times.get(2, stored(2))], [30, 10], 'after it: the rows, the failed one unchanged');
    db.close();
  });
});
