import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { COPIED_TABLES } from '../../src/storage/copy-to-postgres.js';
import { TestAccount, approvedDevice, loadSodium } from '../helpers/e2e.js';
import { freeLocalPort } from '../helpers/engine-process.js';
import { request, signUp } from '../helpers/http.js';
import { type PgServer, startPostgres } from '../helpers/postgres.js';
import { type ServerProcess, runCli, startServer } from '../helpers/processes.js';
import { type FakeFcm, makeTestPki, serviceAccountJson, startFakeFcm } from '../helpers/push-providers.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { connectAuthenticated } from '../helpers/ws.js';

/**
 * `chatd db copy --to postgres://…` on a SQLite database the real server made
 * (users, devices, a group, a direct thread, messages, read cursors, keys, a
 * push token and its queued notification), into a real PostgreSQL.
 */

type Row = Record<string, unknown>;

/** The SQLite side as PostgreSQL returns it: 0/1 flags as booleans where PostgreSQL has a boolean column. */
function asPostgres(row: Row, booleans: ReadonlySet<string>): Row {
  return Object.fromEntries(Object.entries(row).map(([key, value]) => [key, booleans.has(key) && value !== null ? value !== 0 : value]));
}

async function query<R extends Row>(url: string, text: string, values: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  // int8 as numbers, as the server reads them.
  client.setTypeParser(20, (value: string) => Number(value));
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

describe('chatd db copy --to postgres://…', () => {
  let postgres: PgServer;
  let fcm: FakeFcm;
  let data: string;
  let config: string;
  let env: Record<string, string>;
  let sqliteEpoch: string;

  before(async () => {
    postgres = await startPostgres();
    await loadSodium();
    const dir = tempDir();
    const pki = makeTestPki(dir);
    const serviceAccount = serviceAccountJson(dir, 'chatd-test');
    fcm = await startFakeFcm(pki, { serviceAccountFile: serviceAccount });
    // FCM is down for a while: carol's notification stays queued (a push_queue row) for the copy.
    fcm.respondWith(() => ({ status: 503 }));
    env = { NODE_EXTRA_CA_CERTS: pki.caFile };
    data = join(dir, 'data');
    config = writeConfig(
      dir,
      `[accounts]\nregistration = "open"\n[rate_limit]\nlogin_per_address = 100000\n[fcm]\nservice_account_file = "${serviceAccount}"\nconnect_to = "127.0.0.1:${fcm.port}"\n`,
    );
    const server = await startServer(['--data', data, '--config', config], { env });
    try {
      await fillServer(server);
    } finally {
      await server.stop();
    }
    addAttachment(join(data, 'chatd.db'));
    addChanges(join(data, 'chatd.db'));
    const sqlite = new Database(join(data, 'chatd.db'), { readonly: true });
    sqliteEpoch = (sqlite.prepare(`SELECT value FROM meta WHERE key = 'epoch'`).get() as { value: string }).value;
    sqlite.close();
  });
  after(async () => {
    await fcm?.close();
    await postgres?.stop();
  });

  /** Three users, alice on two devices with keys; a group and a direct thread with messages; bob received and read some; carol has a push token and is offline. */
  async function fillServer(server: ServerProcess): Promise<void> {
    const alice = await signUp(server.url, 'alice');
    const alice2 = await signUp(server.url, 'alice2');
    const bob = await signUp(server.url, 'bob');
    const carol = await signUp(server.url, 'carol');
    const pushed = await request(`${server.url}/v1/me/push`, { method: 'PUT', token: carol.token, body: { platform: 'fcm', token: `fcm-token-carol-${'x'.repeat(40)}` } });
    assert.equal(pushed.status, 200);
    const a = await connectAuthenticated(server.wsUrl, alice.token);
    await approvedDevice(a.socket, alice.userId, alice.deviceId, new TestAccount(alice.userId));
    const group = (await a.socket.expect({ type: 'group_create', title: 'Copy', members: [bob.userId, 'carol', alice2.userId] }, 'thread')).thread.id;
    const direct = (await a.socket.expect({ type: 'direct_open', user_id: bob.userId }, 'thread')).thread.id;
    for (let i = 0; i < 12; i++) {
      await a.socket.expect({ type: 'send', thread_id: i % 3 === 0 ? direct : group, client_msg_id: `m${i}`, body: { text: `message ${i}` } }, 'ack');
    }
    const b = await connectAuthenticated(server.wsUrl, bob.token);
    await b.socket.expect({ type: 'delivered', thread_id: group, seq: 7 }, 'delivered');
    await b.socket.expect({ type: 'read', thread_id: group, seq: 5 }, 'read_state');
    await b.socket.expect({ type: 'send', thread_id: direct, client_msg_id: 'b1', body: { text: 'hello alice' } }, 'ack');
    await fcm.waitForRequests(1);
    a.socket.close();
    b.socket.close();
  }

  /**
   * An attachment as the server stores it, written with SQL while the server
   * is stopped (the upload endpoints are other branches of the issue): alice's
   * complete upload with a thumbnail, carried by her first message (its
   * attachments column and a ref), an encrypted upload of hers still
   * incomplete, an orphaned blob, and a secret.
   */
  function addAttachment(file: string): void {
    const sqlite = new Database(file);
    try {
      const message = sqlite.prepare(`SELECT id, thread_id, seq, sender_user_id, sender_device_id FROM messages WHERE kind = 'text' ORDER BY id LIMIT 1`).get() as {
        id: number;
        thread_id: number;
        seq: number;
        sender_user_id: number;
        sender_device_id: number;
      };
      const upload = sqlite.prepare(
        `INSERT INTO uploads (id, user_id, device_id, length, name, declared_type, encrypted, keep_metadata, duration_ms, created_at, expires_at,
                              completed_at, sha256, size, mime, width, height, thumb_sha256, thumb_width, thumb_height)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      const [file1, thumb, orphan] = ['a', 'b', 'c'].map((c) => c.repeat(64)) as [string, string, string];
      sqlite.transaction(() => {
        upload.run('photo-id', message.sender_user_id, message.sender_device_id, 2048, 'photo.jpg', 'image/jpeg', 0, 1, null, 1_700_000_000_000, 1_700_086_400_000,
          1_700_000_001_000, file1, 2000, 'image/jpeg', 640, 480, thumb, 64, 48);
        upload.run('secret-id', message.sender_user_id, message.sender_device_id, 4096, 'notes.bin', 'application/octet-stream', 1, 0, 1500, 1_700_000_000_000,
          1_700_086_400_000, null, null, null, null, null, null, null, null, null);
        sqlite.prepare('INSERT INTO attachment_refs (upload_id, thread_id, seq) VALUES (?, ?, ?)').run('photo-id', message.thread_id, message.seq);
        const json = JSON.stringify([{ id: 'photo-id', name: 'photo.jpg', size: 2000, mime: 'image/jpeg', sha256: file1, width: 640, height: 480, thumbnail: { width: 64, height: 48 } }]);
        sqlite.prepare('UPDATE messages SET attachments = ? WHERE id = ?').run(json, message.id);
        sqlite.prepare('INSERT INTO blob_orphans (sha256, since) VALUES (?, ?)').run(orphan, 1_700_000_002_000);
        sqlite.prepare('INSERT INTO server_secrets (name, value) VALUES (?, ?)').run('test_secret', Buffer.from([0, 1, 2, 253, 254, 255]));
      })();
    } finally {
      sqlite.close();
    }
  }

  /**
   * Message changes as the SQLite engine stores them (MSG-SPEC §1), written
   * with SQL while the server is stopped (the edit, react and delete frames
   * are other branches of the issue): in the group, bob's reaction to a
   * message and alice's edit of it, then her delete of another message (its
   * tombstone and its erased earlier edit), a reply with mentions, and bob
   * hiding a message for himself. Change rows count in `uncounted`.
   */
  function addChanges(file: string): void {
    const sqlite = new Database(file);
    try {
      const thread = sqlite.prepare(`SELECT id, last_seq, uncounted FROM threads WHERE kind = 'group'`).get() as { id: number; last_seq: number; uncounted: number };
      const [edited, deleted] = sqlite
        .prepare(`SELECT id, seq, sender_user_id, sender_device_id FROM messages WHERE thread_id = ? AND kind = 'text' ORDER BY seq LIMIT 2`)
        .all(thread.id) as Array<{ id: number; seq: number; sender_user_id: number; sender_device_id: number }>;
      const bob = sqlite.prepare(`SELECT u.id AS user, d.id AS device FROM users u JOIN devices d ON d.user_id = u.id WHERE u.username = 'bob'`).get() as { user: number; device: number };
      if (!edited || !deleted) throw new Error('the group has fewer than two messages');
      const insert = sqlite.prepare(
        `INSERT INTO messages (thread_id, seq, sender_user_id, sender_device_id, client_msg_id, kind, body, created_at, reply_to, mentions, target_id, change, uncounted)
         VALUES (?, ?, ?, ?, ?, 'text', ?, ?, ?, ?, ?, ?, ?)`,
      );
      let seq = thread.last_seq;
      let uncounted = thread.uncounted;
      const at = 1_700_000_100_000;
      const change = (sender: { user: number; device: number }, targetId: number, body: string, json: string): number => {
        uncounted++;
        return Number(insert.run(thread.id, ++seq, sender.user, sender.device, `change-${seq}`, body, at + seq, null, null, targetId, json, uncounted).lastInsertRowid);
      };
      const alice = { user: edited.sender_user_id, device: edited.sender_device_id };
      sqlite.transaction(() => {
        change(bob, edited.id, 'null', '{"type":"reaction","emoji":"👍","on":true}');
        change(alice, edited.id, '{"text":"edited"}', '{"type":"edit"}');
        sqlite.prepare(`UPDATE messages SET body = '{"text":"edited"}', edited_at = ?, reactions = ? WHERE id = ?`).run(at, `[{"emoji":"👍","user_ids":[${bob.user}]}]`, edited.id);
        change(alice, deleted.id, 'null', '{"type":"edit"}');
        change(alice, deleted.id, 'null', '{"type":"delete"}');
        sqlite.prepare(`UPDATE messages SET body = 'null', attachments = NULL, deleted_at = ? WHERE id = ?`).run(at + 1, deleted.id);
        insert.run(thread.id, ++seq, bob.user, bob.device, 'reply-1', '{"text":"a reply"}', at + seq, edited.id, `[${alice.user}]`, null, null, uncounted);
        sqlite.prepare('UPDATE threads SET last_seq = ?, uncounted = ? WHERE id = ?').run(seq, uncounted, thread.id);
        sqlite.prepare('INSERT INTO hidden_messages (user_id, message_id, thread_id, hidden_at) VALUES (?, ?, ?, ?)').run(bob.user, edited.id, thread.id, at + 2);
      })();
    } finally {
      sqlite.close();
    }
  }

  it('copies every table with its ids, verifies it, and gives PostgreSQL a new epoch', async () => {
    const url = await postgres.freshDatabase();
    const target = url.replace('postgres@', 'postgres:s3cret@');
    const result = await runCli(['db', 'copy', '--data', data, '--config', config, '--to', target], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /messages: \d+\/\d+ rows \(100%\)/, 'progress on stderr, per table');
    assert.match(result.stdout, /^copied \d+ rows of 20 tables to postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/chatd_test_\d+ in [\d.]+ s$/m);
    assert.match(result.stdout, /verified: the rows of every table, and the last seq and messages of each of the 2 threads/);
    assert.doesNotMatch(result.stdout + result.stderr, /s3cret/);

    const sqlite = new Database(join(data, 'chatd.db'), { readonly: true });
    try {
      for (const table of COPIED_TABLES) {
        const want = (sqlite.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
        const [got] = await query<{ n: number }>(url, `SELECT count(*) AS n FROM ${table}`);
        assert.equal(got?.n, want, `rows of ${table}`);
      }
      for (const table of ['users', 'devices', 'threads', 'thread_members', 'messages', 'device_cursors', 'inbox', 'push_queue', 'account_keys', 'uploads', 'attachment_refs', 'blob_orphans', 'server_secrets', 'hidden_messages']) {
        assert.ok((sqlite.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n > 0, `the source has rows in ${table}: the test covers it`);
      }
      // A sample of rows, column for column.
      const booleans = new Set(
        (await query<{ column_name: string }>(url, `SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND data_type = 'boolean'`)).map((row) => row.column_name),
      );
      for (const [table, order] of [
        ['users', 'id'],
        ['devices', 'id'],
        ['threads', 'id'],
        ['thread_members', 'thread_id, user_id'],
        ['messages', 'id'],
        ['device_cursors', 'device_id, thread_id'],
        ['account_keys', 'user_id'],
        ['uploads', 'id'],
        ['attachment_refs', 'upload_id'],
        ['blob_orphans', 'sha256'],
        ['server_secrets', 'name'],
        ['hidden_messages', 'id'],
      ] as const) {
        const want = (sqlite.prepare(`SELECT * FROM ${table} ORDER BY ${order}`).all() as Row[]).map((row) => asPostgres(row, booleans));
        const got = await query(url, `SELECT ${Object.keys(want[0] ?? {}).join(', ')} FROM ${table} ORDER BY ${order}`);
        assert.deepEqual(got, want, `rows of ${table}`);
      }
      const carrying = sqlite.prepare('SELECT id, attachments FROM messages WHERE attachments IS NOT NULL').all();
      assert.equal(carrying.length, 1, 'the source has a message with attachments');
      assert.deepEqual(await query(url, 'SELECT id, attachments FROM messages WHERE attachments IS NOT NULL'), carrying);
      const changes = sqlite.prepare('SELECT count(*) AS n FROM messages WHERE target_id IS NOT NULL').get() as { n: number };
      assert.equal(changes.n, 4, 'the source has change rows: a reaction, two edits, a delete');
      const changed = `SELECT id, body, reply_to, mentions, edited_at, deleted_at, reactions, target_id, change, uncounted FROM messages
        WHERE target_id IS NOT NULL OR edited_at IS NOT NULL OR deleted_at IS NOT NULL OR reply_to IS NOT NULL ORDER BY id`;
      assert.deepEqual(await query(url, changed), sqlite.prepare(changed).all());
      const threadCounts = 'SELECT id, last_seq, uncounted FROM threads ORDER BY id';
      assert.deepEqual(await query(url, threadCounts), sqlite.prepare(threadCounts).all());
      const seqs = sqlite.prepare('SELECT thread_id, max(seq) AS seq FROM messages GROUP BY thread_id ORDER BY thread_id').all();
      assert.deepEqual(await query(url, 'SELECT thread_id, max(seq) AS seq FROM messages GROUP BY thread_id ORDER BY thread_id'), seqs);
      const [{ max } = { max: 0 }] = sqlite.prepare('SELECT max(id) AS max FROM users').all() as Array<{ max: number }>;
      const [next] = await query<{ id: number }>(url, `INSERT INTO users (username, display_name, created_at) VALUES ('dave', 'Dave', 0) RETURNING id`);
      assert.ok((next?.id ?? 0) > max, 'a new user gets an id past the copied ones');
      const [{ hiddenMax } = { hiddenMax: 0 }] = sqlite.prepare('SELECT max(id) AS hiddenMax FROM hidden_messages').all() as Array<{ hiddenMax: number }>;
      const [hidden] = await query<{ id: number }>(
        url,
        `INSERT INTO hidden_messages (user_id, message_id, thread_id, hidden_at) SELECT $1, id, thread_id, 0 FROM messages WHERE target_id IS NULL ORDER BY id DESC LIMIT 1 RETURNING id`,
        [next?.id],
      );
      assert.ok((hidden?.id ?? 0) > hiddenMax, 'a new hidden message gets an id past the copied ones');
    } finally {
      sqlite.close();
    }
    const [epoch] = await query<{ value: string }>(url, `SELECT value FROM meta WHERE key = 'epoch'`);
    assert.ok(epoch && epoch.value !== sqliteEpoch, 'a new epoch, so that clients sync afresh');
  });

  it('copies a table larger than one batch, in several, reporting progress', async () => {
    // A copy of the data directory with 4,500 more messages in the direct thread, written as the server would.
    const big = join(tempDir(), 'data');
    mkdirSync(big, { mode: 0o700 });
    const original = new Database(join(data, 'chatd.db'), { readonly: true });
    original.exec(`VACUUM INTO '${join(big, 'chatd.db')}'`);
    original.close();
    const sqlite = new Database(join(big, 'chatd.db'));
    const thread = sqlite.prepare(`SELECT id, last_seq FROM threads WHERE kind = 'direct'`).get() as { id: number; last_seq: number };
    const sender = sqlite.prepare('SELECT sender_user_id AS user, sender_device_id AS device FROM messages WHERE thread_id = ? LIMIT 1').get(thread.id) as { user: number; device: number };
    const insert = sqlite.prepare('INSERT INTO messages (thread_id, seq, sender_user_id, sender_device_id, client_msg_id, body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)');
    sqlite.transaction(() => {
      for (let i = 1; i <= 4_500; i++) insert.run(thread.id, thread.last_seq + i, sender.user, sender.device, `bulk-${i}`, JSON.stringify({ text: `bulk ${i}` }), 1_700_000_000_000 + i);
      sqlite.prepare('UPDATE threads SET last_seq = ? WHERE id = ?').run(thread.last_seq + 4_500, thread.id);
    })();
    const messages = (sqlite.prepare('SELECT count(*) AS n FROM messages').get() as { n: number }).n;
    sqlite.close();

    const url = await postgres.freshDatabase();
    const result = await runCli(['db', 'copy', '--data', big, '--config', config, '--to', url], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`^  messages +${messages}$`, 'm'));
    assert.match(result.stderr, new RegExp(`messages: ${messages}/${messages} rows \\(100%\\)`));
    assert.deepEqual(await query(url, 'SELECT count(*) AS n, max(seq) AS seq FROM messages WHERE thread_id = $1', [thread.id]), [
      { n: thread.last_seq + 4_500, seq: thread.last_seq + 4_500 },
    ]);
  });

  it('rolls the whole copy back when what it reads back differs (a seq moved), leaving the target empty', async () => {
    const url = await postgres.freshDatabase();
    assert.equal((await runCli(['db', 'migrate', '--data', data, '--config', config], { env: { ...env, CHATD_STORAGE_URL: url } })).code, 0);
    // A trigger that quietly moves the last message of a thread to another seq: the copy must notice, not commit a thread with a hole.
    const sqlite = new Database(join(data, 'chatd.db'), { readonly: true });
    const { id } = sqlite.prepare('SELECT max(id) AS id FROM messages').get() as { id: number };
    sqlite.close();
    await query(url, `CREATE FUNCTION drop_one() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.id = ${id} THEN NEW.seq := NEW.seq + 1000; END IF; RETURN NEW; END $$`);
    await query(url, `CREATE TRIGGER drop_one BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION drop_one()`);
    const result = await runCli(['db', 'copy', '--data', data, '--config', config, '--to', url], { env });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^chatd: the copy differs from the source, so it was rolled back: thread \d+: last_seq (\d+), largest message seq \1, \d+ messages in SQLite, last_seq \1, largest message seq \d+, \d+ messages in PostgreSQL; nothing was written to postgres:/m);
    const [counts] = await query(url, 'SELECT (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM messages) AS messages');
    assert.deepEqual(counts, { users: 0, messages: 0 });
  });

  it('stops at rows PostgreSQL refuses, naming the table, and leaves the target empty', async () => {
    const url = await postgres.freshDatabase();
    assert.equal((await runCli(['db', 'migrate', '--data', data, '--config', config], { env: { ...env, CHATD_STORAGE_URL: url } })).code, 0);
    // A message an inbox row refers to goes missing: the inbox rows then break their foreign key.
    const sqlite = new Database(join(data, 'chatd.db'), { readonly: true });
    const { id } = sqlite.prepare('SELECT message_id AS id FROM inbox ORDER BY message_id LIMIT 1').get() as { id: number };
    sqlite.close();
    await query(url, `CREATE FUNCTION drop_one() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.id = ${id} THEN RETURN NULL; END IF; RETURN NEW; END $$`);
    await query(url, `CREATE TRIGGER drop_one BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION drop_one()`);
    const result = await runCli(['db', 'copy', '--data', data, '--config', config, '--to', url], { env });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^chatd: copying inbox failed: insert or update on table "inbox" violates foreign key constraint "inbox_message_id_fkey" \(Key \(message_id\)=\(\d+\) is not present in table "messages"\.\); nothing was written to postgres:/m);
    assert.doesNotMatch(result.stderr, /    at /);
    assert.deepEqual(await query(url, 'SELECT (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM messages) AS messages'), [{ users: 0, messages: 0 }]);
  });

  it('refuses a database that is not empty, and writes nothing to it', async () => {
    const url = await postgres.freshDatabase();
    assert.equal((await runCli(['db', 'copy', '--data', data, '--config', config, '--to', url], { env })).code, 0);
    const before = await query(url, 'SELECT (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM messages) AS messages, (SELECT value FROM meta) AS epoch');
    const again = await runCli(['db', 'copy', '--data', data, '--config', config, '--to', url], { env });
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^chatd: postgres:\/\/postgres@127\.0\.0\.1:\d+\/chatd_test_\d+ is not empty \(users: 4, devices: \d+, .*\): copy into a new, empty database/m);
    assert.deepEqual(await query(url, 'SELECT (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM messages) AS messages, (SELECT value FROM meta) AS epoch'), before);

    // A deployment's database of an older schema (here: its last migration not applied) is refused before its
    // schema is touched: a --to pointed at it by mistake does not upgrade it under its running nodes.
    await query(url, 'DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)');
    const applied = await query(url, 'SELECT version FROM schema_migrations ORDER BY version');
    const older = await runCli(['db', 'copy', '--data', data, '--config', config, '--to', url], { env });
    assert.equal(older.code, 1);
    assert.match(older.stderr, /is not empty \(users: 4/);
    assert.doesNotMatch(older.stderr, /created the schema/);
    assert.deepEqual(await query(url, 'SELECT version FROM schema_migrations ORDER BY version'), applied);
  });

  it('names an unreachable database without its password and exits 1', async () => {
    const port = await freeLocalPort();
    const result = await runCli(['db', 'copy', '--data', data, '--config', config, '--to', `postgres://chatd:s3cret@127.0.0.1:${port}/chatd`], { env });
    assert.equal(result.code, 1);
    assert.match(result.stderr, new RegExp(`^chatd: cannot use PostgreSQL at postgres://chatd:\\*\\*\\*@127\\.0\\.0\\.1:${port}/chatd: .*ECONNREFUSED`, 'm'));
    assert.doesNotMatch(result.stderr, /s3cret|    at /);
  });

  it('refuses a URL of another engine as a usage error', async () => {
    const result = await runCli(['db', 'copy', '--data', data, '--config', config, '--to', 'redis://:s3cret@127.0.0.1:6379'], { env });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--to must be a postgres:\/\/ URL .*"redis:\/\/:\*\*\*@127\.0\.0\.1:6379" has the scheme redis/);
  });

  it('chatd db migrate with storage.url migrates PostgreSQL; backup and vacuum refuse, saying what to use; check checks the search index', async () => {
    const url = await postgres.freshDatabase();
    const urlEnv = { ...env, CHATD_STORAGE_URL: url.replace('postgres@', 'postgres:s3cret@') };
    const auditLines = (): Array<Record<string, unknown>> => {
      try {
        return readFileSync(join(data, 'audit.log'), 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);
      } catch {
        return [];
      }
    };
    const audited = auditLines().length;
    const first = await runCli(['db', 'migrate', '--data', data, '--config', config], { env: urlEnv });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^applied migration\(s\) 0001_initial\.sql.* to postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/chatd_test_\d+$/m);
    // Audited on this machine, as on SQLite (the data directory's audit.log), without the password.
    assert.deepEqual(auditLines().slice(audited).map((entry) => entry['audit']), ['admin_database_migrated']);
    assert.doesNotMatch(readFileSync(join(data, 'audit.log'), 'utf8'), /s3cret/);
    const again = await runCli(['db', 'migrate', '--data', data, '--config', config], { env: urlEnv });
    assert.match(again.stdout, /^the PostgreSQL schema at postgres:\/\/postgres:\*\*\*@.* is up to date$/m);
    for (const [args, instead] of [
      [['db', 'backup', join(tempDir(), 'copy.db')], /pg_dump/],
      [['db', 'vacuum'], /autovacuum/],
    ] as const) {
      const refused = await runCli([...args, '--data', data, '--config', config], { env: urlEnv });
      assert.equal(refused.code, 1, args.join(' '));
      assert.match(refused.stderr, /works on SQLite, and storage\.url \(postgres:\/\/postgres:\*\*\*@.*\) says this deployment runs on PostgreSQL/);
      assert.match(refused.stderr, instead);
      assert.doesNotMatch(refused.stderr, /s3cret/);
    }
    // db check on PostgreSQL: the search index against the messages (the pages are amcheck's).
    const checked = await runCli(['db', 'check', '--data', data, '--config', config], { env: urlEnv });
    assert.equal(checked.code, 0, checked.stderr);
    assert.match(checked.stdout, /search index: ok \(0 messages indexed\)/);
    assert.match(checked.stdout, /amcheck/);
    assert.doesNotMatch(checked.stdout, /s3cret/);
  });

  it('refuses to copy while a server serves the data directory', async () => {
    const server = await startServer(['--data', data, '--config', config], { env });
    try {
      const url = await postgres.freshDatabase();
      const result = await runCli(['db', 'copy', '--data', data, '--config', config, '--to', url], { env });
      assert.equal(result.code, 1);
      assert.match(result.stderr, /is in use by another chatd \(pid \d+, port \d+.*\): stop the server first, so that no message is sent while the database is copied/);
      assert.deepEqual(await query(url, `SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'`), [{ n: 0 }], 'nothing was created');
    } finally {
      await server.stop();
    }
  });
});
