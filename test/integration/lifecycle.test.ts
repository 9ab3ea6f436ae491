import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { type Socket, connect, createServer } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { latestVersion, loadMigrations, migrate, openDatabase } from '../../src/storage/database.js';
import { request, signUp } from '../helpers/http.js';
import { CHATD_BIN, type ServerProcess, runCli, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { transports } from '../helpers/transports.js';
import { connectAuthenticated } from '../helpers/ws.js';

describe('start and stop', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal} with a client connected: the client is told "going away" (1001), the process exits 0, the database checks clean`, async () => {
      const dir = tempDir();
      const args = ['--data', join(dir, 'data'), '--config', writeConfig(dir, '[accounts]\nregistration = "open"\n')];
      const server = await startServer(args);
      const { token } = await signUp(server.url, 'alice');
      const { socket } = await connectAuthenticated(server.wsUrl, token);
      const code = await server.stop(signal);
      const closed = await socket.closed;
      assert.equal(closed.code, 1001);
      assert.match(closed.reason, /shutting down/);
      assert.equal(code, 0);
      assert.ok(server.logs.some((line) => line.msg === 'stopped'), 'logs that it stopped');
      const wal = join(dir, 'data', 'chatd.db-wal');
      assert.ok(!existsSync(wal) || statSync(wal).size === 0, 'the WAL was checkpointed into the database');
      const check = await runCli(['db', 'check', ...args]);
      assert.equal(check.code, 0, check.stdout);
    });
  }

  it('the same signal again at once (the group\'s and a wrapper\'s forwarded copy, as under npx) is one request: a clean stop', async () => {
    const dir = tempDir();
    const server = await startServer(['--data', join(dir, 'data'), '--config', writeConfig(dir, '[accounts]\nregistration = "open"\n')]);
    const upload = await holdShutdown(server);
    const pid = server.process.pid as number;
    process.kill(pid, 'SIGTERM');
    await server.waitForLog((line) => line.msg === 'shutting down');
    process.kill(pid, 'SIGTERM');
    // Once the copy has been handled (it logs nothing), the upload ends and the shutdown can finish.
    await server.waitForLog((line) => line.msg === 'second signal: exiting without a clean shutdown', 500).catch(() => undefined);
    upload.destroy();
    assert.equal(await server.exited, 0);
    assert.equal(server.logs.at(-1)?.msg, 'stopped');
  });

  it('the parent gone under npm, then the group\'s signal (npm\'s shell died of it first) is one request: a clean stop', async () => {
    const dir = tempDir();
    // A shell that forks chatd and waits, as npm's `sh -c` does; npm_lifecycle_event says npm started it.
    const server = await startServer(['--data', join(dir, 'data'), '--config', writeConfig(dir, '[accounts]\nregistration = "open"\n')], {
      command: ['sh', '-c', `"${process.execPath}" "${CHATD_BIN}" "$@"; exit $?`, 'sh'],
      env: { npm_lifecycle_event: 'npx' },
    });
    const shell = server.process.pid as number;
    const chatd = Number(readFileSync(`/proc/${shell}/task/${shell}/children`, 'utf8').trim());
    const upload = await holdShutdown(server);
    process.kill(shell, 'SIGTERM');
    await server.waitForLog((line) => line.msg === 'shutting down' && line['signal'] === 'parent gone');
    process.kill(chatd, 'SIGTERM');
    await server.waitForLog((line) => line.msg === 'second signal: exiting without a clean shutdown', 500).catch(() => undefined);
    upload.destroy();
    await server.exited;
    assert.equal(server.logs.at(-1)?.msg, 'stopped');
  });

  it('a user still connected when the server stops is stored as last active then, not when they connected', async () => {
    const dir = tempDir();
    // A grace period longer than the test: only the shutdown can record the user as gone.
    const args = ['--data', join(dir, 'data'), '--config', writeConfig(dir, '[accounts]\nregistration = "open"\n[presence]\noffline_grace_ms = 600000\n')];
    const server = await startServer(args);
    const { token, userId } = await signUp(server.url, 'alice');
    const { socket } = await connectAuthenticated(server.wsUrl, token);
    const connectedAt = (await socket.expect({ type: 'presence', user_ids: [userId] }, 'presence')).users[0].last_active_at as number;
    while (Date.now() <= connectedAt) await new Promise((resolve) => setTimeout(resolve, 1));
    assert.equal(await server.stop(), 0);
    const db = new Database(join(dir, 'data', 'chatd.db'), { readonly: true });
    try {
      const row = db.prepare('SELECT last_active_at FROM users WHERE id = ?').get(userId) as { last_active_at: number };
      assert.ok(row.last_active_at > connectedAt, `last_active_at ${row.last_active_at} is the stop, after the connection at ${connectedAt}`);
    } finally {
      db.close();
    }
  });

  it('creates the data directory and the database on first start, with no config at all', async () => {
    const dir = tempDir();
    const server = await startServer([], { cwd: dir });
    try {
      assert.match(server.banner, /data in .*chatd-data\/chatd\.db/);
      assert.match(server.banner, /registration invite/);
      assert.equal((await request(`${server.url}/healthz`)).status, 200);
    } finally {
      await server.stop();
    }
  });

  it('stops with exit code 2 and names the key when the configuration is bad', async () => {
    const dir = tempDir();
    const config = join(dir, 'bad.toml');
    writeFileSync(config, '[server]\ntransport = "turbo"\n');
    const result = await runCli(['serve', '--config', config, '--data', join(dir, 'data')]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /server\.transport .* must be one of "auto", "uws", "node", got "turbo"/);
    const env = await runCli(['serve', '--data', join(dir, 'data')], { env: { CHATD_SERVER_PORT: 'eighty' } });
    assert.equal(env.code, 2);
    assert.match(env.stderr, /server\.port \(from CHATD_SERVER_PORT\) must be an integer/);
    const flag = await runCli(['serve', '--port', '99999', '--data', join(dir, 'data')]);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /server\.port \(flag --port\) must be an integer from 0 to 65535, got "99999"/);
  });

  it('upgrades a database of an earlier schema at start, says so in its log, and keeps every message', async () => {
    const upgraded = tempDir();
    const olderDatabase = (dataDir: string): void => {
      const db = openDatabase({ file: join(dataDir, 'chatd.db'), synchronous: 'full', busyTimeoutMs: 1000 });
      migrate(db, loadMigrations().slice(0, 8));
      db.exec(`
        INSERT INTO users (id, username, display_name, password_hash, created_at) VALUES (1, 'a', 'a', 'x', 0);
        INSERT INTO devices (id, user_id, name, platform, created_at) VALUES (1, 1, 'd', 'cli', 0);
        INSERT INTO threads (id, kind, title, created_at, last_seq) VALUES (1, 'group', 't', 0, 2);
        INSERT INTO messages (id, thread_id, seq, sender_user_id, sender_device_id, client_msg_id, body, created_at)
          VALUES (5, 1, 1, 1, 1, 'm1', '{"text":"one"}', 1), (6, 1, 2, 1, 1, 'm2', '{"text":"two"}', 2);
      `);
      db.close();
    };
    const data = join(upgraded, 'data');
    mkdirSync(data);
    olderDatabase(data);
    const server = await startServer(['--data', data]);
    const applying = server.logs.find((line) => line.msg === 'upgrading the database schema: this can take a while on a large database');
    assert.equal(applying?.migration, '0009_idempotency_key_order.sql');
    assert.ok(server.logs.some((line) => line.msg === 'database schema upgraded' && line.migration === '0009_idempotency_key_order.sql' && typeof line.ms === 'number'));
    assert.equal(await server.stop(), 0);
    const db = new Database(join(data, 'chatd.db'), { readonly: true });
    assert.equal(db.pragma('user_version', { simple: true }), latestVersion(loadMigrations()));
    assert.deepEqual(db.prepare('SELECT id, seq, client_msg_id, body FROM messages ORDER BY id').all(), [
      { id: 5, seq: 1, client_msg_id: 'm1', body: '{"text":"one"}' },
      { id: 6, seq: 2, client_msg_id: 'm2', body: '{"text":"two"}' },
    ]);
    db.close();

    // A new database gets every migration at once, without a word.
    const fresh = await startServer(['--data', join(tempDir(), 'data')]);
    assert.ok(!fresh.logs.some((line) => line.msg === 'upgrading the database schema: this can take a while on a large database'));
    await fresh.stop();

    // Admin commands leave an older database alone (its server may be running) and say how to upgrade it;
    // a backup copies it as it is.
    const cliDir = tempDir();
    const cliData = join(cliDir, 'data');
    mkdirSync(cliData);
    olderDatabase(cliData);
    const listed = await runCli(['user', 'list', '--data', cliData]);
    assert.equal(listed.code, 1);
    assert.match(listed.stderr, /the database schema is version 8 and this chatd needs \d+: stop the server, back the database up \(chatd db backup FILE\), then upgrade it/);
    const backup = await runCli(['db', 'backup', join(cliDir, 'before-upgrade.db'), '--data', cliData]);
    assert.equal(backup.code, 0, backup.stderr);
    const copy = new Database(join(cliDir, 'before-upgrade.db'), { readonly: true });
    assert.equal(copy.pragma('user_version', { simple: true }), 8, 'the backup is of the database as it was');
    copy.close();
    // The CLI tells of the upgrade on stderr, and keeps stdout for its answer.
    const migrated = await runCli(['db', 'migrate', '--data', cliData]);
    assert.equal(migrated.code, 0, migrated.stderr);
    assert.match(migrated.stderr, /upgrading the database schema: 0009_idempotency_key_order\.sql .*\n.*upgraded: 0009_idempotency_key_order\.sql in \d+\.\d s/);
    assert.match(migrated.stdout, new RegExp(`^applied migration\\(s\\) 9(, \\d+)*; schema version ${latestVersion(loadMigrations())}$`, 'm'));
  });

  it('refuses to start on a database written by a newer chatd', async () => {
    const dir = tempDir();
    const data = join(dir, 'data');
    const db = openDatabase({ file: join(data, 'chatd.db'), synchronous: 'full', busyTimeoutMs: 1000 });
    migrate(db);
    db.pragma('user_version = 999');
    db.close();
    const result = await runCli(['serve', '--port', '0', '--data', data]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /schema is version 999, newer than this chatd knows/);
  });

  for (const transport of transports('says clearly when the port is taken')) {
  it(`says clearly when the port is taken (${transport})`, async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const dir = tempDir();
      const result = await runCli(['serve', '--host', '127.0.0.1', '--port', String(port), '--transport', transport, '--data', join(dir, 'data')]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}`));
    } finally {
      blocker.close();
    }
  });
  }
});

/** Starts an upload whose body is still coming, which keeps a shutdown waiting until the returned socket is destroyed. */
async function holdShutdown(server: ServerProcess): Promise<Socket> {
  const { token } = await signUp(server.url, 'alice');
  const created = await fetch(`${server.url}/v1/uploads`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'tus-resumable': '1.0.0', 'upload-length': '1000' },
  });
  const location = created.headers.get('location') as string;
  const socket = connect(server.port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(
    `PATCH ${location} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${token}\r\ntus-resumable: 1.0.0\r\n` +
      'content-type: application/offset+octet-stream\r\nupload-offset: 0\r\ncontent-length: 1000\r\n\r\n0123456789',
  );
  socket.on('error', () => undefined);
  const offset = async (): Promise<string | null> =>
    (await fetch(`${server.url}${location}`, { method: 'HEAD', headers: { authorization: `Bearer ${token}`, 'tus-resumable': '1.0.0' } })).headers.get('upload-offset');
  while ((await offset()) !== '10');
  return socket;
}
