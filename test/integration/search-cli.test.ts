import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { signUp } from '../helpers/http.js';
import { type PgServer, startPostgres } from '../helpers/postgres.js';
import { runCli, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { connectAuthenticated } from '../helpers/ws.js';

const CONFIG = '[accounts]\nregistration = "open"\n';

describe('chatd db check and db reindex: the search index', () => {
  it('checks the index, names a damaged one and how to rebuild it, refuses to rebuild under a running server, and rebuilds it with progress', async () => {
    const dir = tempDir();
    const data = join(dir, 'data');
    const config = writeConfig(dir, CONFIG);
    const server = await startServer(['--data', data, '--config', config]);
    let running = true;
    try {
      const alice = await signUp(server.url, 'alice');
      const { socket } = await connectAuthenticated(server.wsUrl, alice.token);
      const { thread } = await socket.expect({ type: 'group_create', title: 'notes', members: [] }, 'thread');
      for (let i = 0; i < 12; i++) await socket.expect({ type: 'send', thread_id: thread.id, client_msg_id: `m${i}`, body: { text: `note number ${i}` } }, 'ack');
      socket.close();
      const whileServing = await runCli(['db', 'check', '--data', data, '--config', config]);
      assert.equal(whileServing.code, 0, whileServing.stdout + whileServing.stderr);
      assert.match(whileServing.stdout, /^ {2}search index: ok \(12 messages indexed\)$/m);
      assert.match(whileServing.stdout, /entries counted; the full comparison with the messages runs when no server has the file open/);
      const refused = await runCli(['db', 'reindex', '--data', data, '--config', config]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /in use by another process, most likely a running chatd serve: stop it first/);
    } finally {
      if (running) await server.stop();
      running = false;
    }

    // Damage the counts cannot see: one message's entry in the word index says other words.
    const direct = new Database(join(data, 'chatd.db'));
    const first = direct.prepare('SELECT id, text FROM message_search_text ORDER BY id LIMIT 1').get() as { id: number; text: string };
    direct.prepare(`INSERT INTO message_words (message_words, rowid, text) VALUES ('delete', ?, ?)`).run(first.id, first.text);
    direct.prepare('INSERT INTO message_words (rowid, text) VALUES (?, ?)').run(first.id, 'words it never had');
    direct.close();
    const damaged = await runCli(['db', 'check', '--data', data, '--config', config]);
    assert.equal(damaged.code, 1);
    assert.match(damaged.stdout, /search index: .*message_words/);
    assert.match(damaged.stdout, /rebuild it with `chatd db reindex`/);
    assert.match(damaged.stderr, /chatd db reindex/);

    const rebuilt = await runCli(['db', 'reindex', '--data', data, '--config', config]);
    assert.equal(rebuilt.code, 0, rebuilt.stderr);
    assert.match(rebuilt.stderr, /^reindex: 0% \(0\/12 messages\)$/m);
    assert.match(rebuilt.stderr, /^reindex: 100% \(12\/12 messages\)$/m);
    assert.match(rebuilt.stdout, /^search index rebuilt: 12 messages indexed in \d+ ms$/m);
    const healed = await runCli(['db', 'check', '--data', data, '--config', config]);
    assert.equal(healed.code, 0, healed.stdout);
    assert.match(healed.stdout, /search index: ok \(12 messages indexed\)/);
    assert.doesNotMatch(healed.stdout, /entries counted/, 'the full comparison, with the server stopped');

    const help = await runCli(['db', 'reindex', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Examples:\n\s+\$ .*chatd db reindex/);
  });

  describe('on PostgreSQL', () => {
    let postgres: PgServer | undefined;
    after(async () => postgres?.stop());

    it('checks and rebuilds message_search with storage.url', async () => {
      postgres = await startPostgres();
      const url = await postgres.freshDatabase();
      const dir = tempDir();
      const config = writeConfig(dir, CONFIG);
      const env = { CHATD_STORAGE_URL: url };
      const migrated = await runCli(['db', 'migrate', '--data', join(dir, 'data'), '--config', config], { env });
      assert.equal(migrated.code, 0, migrated.stderr);
      const client = new pg.Client(url);
      await client.connect();
      try {
        // A message as the server stores it; the trigger indexes it.
        await client.query(`INSERT INTO users (username, display_name, password_hash, created_at) VALUES ('u', 'u', 'x', 1)`);
        await client.query(`INSERT INTO devices (user_id, name, platform, token_hash, created_at, last_seen_at) VALUES (1, 'd', 'cli', '\\x00', 1, 1)`);
        await client.query(`INSERT INTO threads (kind, title, last_seq, created_at) VALUES ('group', 't', 2, 1)`);
        await client.query(`INSERT INTO messages (thread_id, seq, sender_user_id, sender_device_id, client_msg_id, body, created_at) VALUES (1, 1, 1, 1, 'a', '{"text":"first"}', 1), (1, 2, 1, 1, 'b', '{"text":"second"}', 2)`);
        const ok = await runCli(['db', 'check', '--data', join(dir, 'data'), '--config', config], { env });
        assert.equal(ok.code, 0, ok.stderr);
        assert.match(ok.stdout, /search index: ok \(2 messages indexed\)/);
        await client.query('DELETE FROM message_search WHERE message_id = 1');
        const damaged = await runCli(['db', 'check', '--data', join(dir, 'data'), '--config', config], { env });
        assert.equal(damaged.code, 1);
        assert.match(damaged.stdout, /message_search lacks 1 searchable message/);
        const rebuilt = await runCli(['db', 'reindex', '--data', join(dir, 'data'), '--config', config], { env });
        assert.equal(rebuilt.code, 0, rebuilt.stderr);
        assert.match(rebuilt.stderr, /reindex: 100% \(2\/2 messages\)/);
        assert.match(rebuilt.stdout, /search index rebuilt: 2 messages indexed/);
        assert.equal((await client.query('SELECT count(*)::int AS n FROM message_search')).rows[0].n, 2);
      } finally {
        await client.end();
      }
    });
  });
});
