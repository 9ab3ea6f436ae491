/**
 * The SQLite ceiling: inserts of a 200-byte message row spread over 1,000
 * threads, in WAL, as chatd stores them: one transaction per row (synchronous
 * FULL and NORMAL) and 100 rows per transaction (FULL). Prints rows/s as JSON.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const seconds = Number(process.argv[2] ?? 3);
const dir = mkdtempSync(join(tmpdir(), 'chatd-sqlite-ceiling-'));
const body = JSON.stringify({ text: 'x'.repeat(180) });

function run(synchronous: 'FULL' | 'NORMAL', perTransaction: number): number {
  const path = join(dir, `${synchronous}-${perTransaction}.db`);
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${synchronous}`);
  db.exec('CREATE TABLE messages (id INTEGER PRIMARY KEY, thread_id INTEGER NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL, UNIQUE (thread_id, seq)) STRICT');
  const insert = db.prepare('INSERT INTO messages (thread_id, seq, body, created_at) VALUES (?, ?, ?, ?)');
  const seqs = new Int32Array(1000);
  const batch = db.transaction((count: number, start: number) => {
    for (let i = 0; i < count; i++) {
      const thread = (start + i) % 1000;
      seqs[thread] = (seqs[thread] as number) + 1;
      insert.run(thread, seqs[thread], body, Date.now());
    }
  });
  let rows = 0;
  const started = performance.now();
  while (performance.now() - started < seconds * 1000) {
    batch(perTransaction, rows);
    rows += perTransaction;
  }
  const rate = rows / ((performance.now() - started) / 1000);
  db.close();
  return rate;
}

const results = { full_per_row: run('FULL', 1), normal_per_row: run('NORMAL', 1), full_per_100: run('FULL', 100) };
rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify(results));
