import Database from 'better-sqlite3';
import { join } from 'node:path';
import { request } from '../../test/helpers/http.js';
import { type Scenario } from '../lib/scenario.js';
import { startBenchServer } from '../lib/server.js';
import type { Context, Result } from '../lib/scenario.js';

/** Time from spawning `chatd serve` to its first 200 from /readyz. */
async function timeToReady(context: Context, dataDir?: string): Promise<{ ms: number; server: Awaited<ReturnType<typeof startBenchServer>> }> {
  const started = performance.now();
  const server = await startBenchServer(context, '', dataDir ? { dataDir } : {});
  while ((await request(`${server.process.url}/readyz`)).status !== 200) await new Promise((resolve) => setTimeout(resolve, 1));
  return { ms: performance.now() - started, server };
}

/** Fills a chatd database with `count` messages in 1,000 threads of two users, straight through SQLite (sending them would take minutes). */
function fill(path: string, count: number): void {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  const now = Date.now();
  db.transaction(() => {
    db.prepare("INSERT INTO users (id, username, display_name, password_hash, created_at) VALUES (1, 'a', 'a', 'x', ?), (2, 'b', 'b', 'x', ?)").run(now, now);
    db.prepare("INSERT INTO devices (id, user_id, name, platform, token_hash, created_at) VALUES (1, 1, 'd', 'bot', randomblob(32), ?), (2, 2, 'd', 'bot', randomblob(32), ?)").run(now, now);
    const thread = db.prepare("INSERT INTO threads (id, kind, direct_key, last_seq, created_at) VALUES (?, 'direct', ?, ?, ?)");
    const member = db.prepare("INSERT INTO thread_members (thread_id, user_id, role, joined_at) VALUES (?, ?, 'member', ?)");
    const perThread = Math.ceil(count / 1000);
    for (let t = 1; t <= 1000; t++) {
      thread.run(t, `1:2:${t}`, perThread, now);
      member.run(t, 1, now);
      member.run(t, 2, now);
    }
    const message = db.prepare("INSERT INTO messages (thread_id, seq, sender_user_id, sender_device_id, client_msg_id, body, created_at) VALUES (?, ?, 1, 1, ?, ?, ?)");
    const body = JSON.stringify({ text: 'x'.repeat(180) });
    for (let i = 0; i < count; i++) message.run((i % 1000) + 1, Math.floor(i / 1000) + 1, `c${i}`, body, now);
  })();
  db.close();
}

export const coldStart: Scenario = {
  name: 'cold-start',
  summary: 'from starting the process to /readyz answering 200, with an empty database and with 1M messages',
  async run(context) {
    const results: Result[] = [];
    const empty = await timeToReady(context);
    const dataDir = empty.server.dataDir;
    await empty.server.stop();
    results.push({ scenario: 'cold-start', setting: 'empty database (created at start)', figures: { 'to ready ms': empty.ms }, serverCpu: 0, generatorCpu: 0, valid: true });
    const again = await timeToReady(context, dataDir);
    await again.server.stop();
    results.push({ scenario: 'cold-start', setting: 'empty database (existing)', figures: { 'to ready ms': again.ms }, serverCpu: 0, generatorCpu: 0, valid: true });
    const count = context.quick ? 100_000 : 1_000_000;
    const filling = performance.now();
    fill(join(dataDir, 'chatd.db'), count);
    context.log(`  filled ${count.toLocaleString('en-US')} messages in ${Math.round(performance.now() - filling)} ms`);
    const full = await timeToReady(context, dataDir);
    await full.server.stop();
    results.push({ scenario: 'cold-start', setting: `${count.toLocaleString('en-US')} messages in 1,000 threads`, figures: { 'to ready ms': full.ms }, serverCpu: 0, generatorCpu: 0, valid: true });
    return results;
  },
};
