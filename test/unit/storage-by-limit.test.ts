import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { byLimit } from '../../src/storage/repositories/by-limit.js';

describe('byLimit', () => {
  it('prepares a statement once per limit, with the limit in its text, and answers with that many rows', () => {
    const db = new Database(':memory:');
    db.exec('CREATE TABLE t (a INTEGER PRIMARY KEY); INSERT INTO t (a) VALUES (1), (2), (3), (4)');
    const texts: string[] = [];
    const first = byLimit((limit) => {
      texts.push(`SELECT a FROM t ORDER BY a LIMIT ${limit}`);
      return db.prepare<[], { a: number }>(`SELECT a FROM t ORDER BY a LIMIT ${limit}`);
    });
    assert.deepEqual(first(2).all().map((row) => row.a), [1, 2]);
    assert.deepEqual(first(2).all().map((row) => row.a), [1, 2]);
    assert.deepEqual(first(3).all().map((row) => row.a), [1, 2, 3]);
    assert.deepEqual(texts, ['SELECT a FROM t ORDER BY a LIMIT 2', 'SELECT a FROM t ORDER BY a LIMIT 3']);
    db.close();
  });

  it('refuses a limit that is not a non-negative integer, so nothing but a number reaches the SQL text', () => {
    const statement = byLimit((limit) => limit);
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) assert.throws(() => statement(bad), RangeError);
  });
});
