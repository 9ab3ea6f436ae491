import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { type TestContext, after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import WebSocket from 'ws';
import { latestVersion, loadMigrations, migrate, openDatabase } from '../../src/storage/database.js';
import { logIn, request } from '../helpers/http.js';
import { CHATD_BIN, type ServerProcess, cleanEnv, runCli, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { TestSocket } from '../helpers/ws.js';

type Line = Record<string, unknown>;

/** POST from a chosen loopback address (Linux answers the whole of 127/8), so that one test can be several clients. */
function postFrom(localAddress: string, url: string, body: unknown): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(url, { method: 'POST', localAddress, agent: false, headers: { 'content-type': 'application/json' } }, (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text ? JSON.parse(text) : null }));
    });
    outgoing.on('error', reject);
    outgoing.end(JSON.stringify(body));
  });
}

describe('accounts on a running server, changed with the admin CLI', () => {
  let server: ServerProcess;
  let data: string;
  let args: string[];
  /** Every password, token and invite code these tests use: none may appear in a log. */
  const secrets: string[] = [];
  const chatd = (command: string[], input?: string) => runCli([...command, ...args], input === undefined ? {} : { input });
  const audited = (event: string, match: (line: Line) => boolean = () => true) => server.waitForLog((line) => line.audit === event && match(line));
  const login = (from: string, username: string, password: string) =>
    postFrom(from, `${server.url}/v1/login`, { username, password, device_name: 'phone', platform: 'ios' });
  const addUser = async (username: string, password: string): Promise<void> => {
    secrets.push(password);
    const added = await chatd(['user', 'add', username], `${password}\n`);
    assert.equal(added.code, 0, added.stderr);
  };
  const signIn = async (username: string, password: string) => {
    const session = await logIn(server.url, username, password);
    secrets.push(session.token);
    return session;
  };

  before(async () => {
    const dir = tempDir();
    data = join(dir, 'data');
    const config = writeConfig(
      dir,
      `
[accounts]
registration = "invite"
[rate_limit]
login_per_username = 3
login_per_address = 1000
login_slowdown_after = 5
login_slowdown_ms = 300
window_seconds = 3600
[websocket]
frames_per_second = 5
`,
    );
    args = ['--data', data, '--config', config];
    server = await startServer(args);
  });
  after(() => server.stop());

  it('a user enabled again does not get back the tokens issued before they were disabled', async () => {
    await addUser('ivan', 'ivan-password');
    const first = await signIn('ivan', 'ivan-password');
    const second = await signIn('ivan', 'ivan-password');
    assert.equal((await request(`${server.url}/v1/me`, { token: first.token })).status, 200);
    const disabled = await chatd(['user', 'disable', 'ivan']);
    assert.equal(disabled.code, 0, disabled.stderr);
    assert.match(disabled.stdout, /user ivan disabled; 2 device\(s\) logged out/);
    assert.equal((await chatd(['user', 'enable', 'ivan'])).code, 0);
    for (const token of [first.token, second.token]) {
      const refused = await request(`${server.url}/v1/me`, { token });
      assert.equal(refused.status, 401, 'a token from before the disable stays dead');
      assert.equal(refused.body.error.code, 'unauthorized');
    }
    const again = await signIn('ivan', 'ivan-password');
    assert.equal((await request(`${server.url}/v1/me`, { token: again.token })).status, 200, 'the password still logs in');
    const devices = JSON.parse((await chatd(['device', 'list', 'ivan', '--json'])).stdout);
    assert.deepEqual(devices.map((device: { id: number }) => device.id), [again.deviceId]);
  });

  it('shows an invite code once and keeps only its hash; the list shows an id and the first letters', async () => {
    const created = await chatd(['invite', 'create', '--json', '--note', 'for judy']);
    assert.equal(created.code, 0, created.stderr);
    const invite = JSON.parse(created.stdout);
    secrets.push(invite.code);
    const list = await chatd(['invite', 'list']);
    assert.match(list.stdout, new RegExp(`^${invite.id}\\s+${invite.prefix}-…\\s+0/1\\s+\\S+\\s+usable\\s+for judy$`, 'm'));
    assert.ok(!list.stdout.includes(invite.code));
    assert.ok(!(await chatd(['invite', 'list', '--json'])).stdout.includes(invite.code));
    const db = new Database(join(data, 'chatd.db'), { readonly: true, fileMustExist: true });
    const rows = db.prepare('SELECT * FROM invites').all();
    db.close();
    assert.ok(!JSON.stringify(rows).includes(invite.code.slice(5)), 'no part of the code past its prefix is stored');
    for (const file of ['chatd.db', 'chatd.db-wal']) {
      assert.ok(!readFileSync(join(data, file)).includes(invite.code.slice(5)), `${file} holds no part of the code past its prefix`);
    }
    secrets.push('judy-password');
    const registered = await request(`${server.url}/v1/register`, { body: { username: 'judy', password: 'judy-password', invite: invite.code } });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    await audited('invite_used', (line) => line.invite_id === invite.id && line.user_id === registered.body.user.id);
    const reused = await request(`${server.url}/v1/register`, { body: { username: 'judy2', password: 'judy-password', invite: invite.code } });
    assert.equal(reused.body.error.code, 'invite_invalid', 'used up');
  });

  it('wrong passwords from one address keep neither the owner nor anyone else out from another address', async () => {
    await addUser('kate', 'kate-password');
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await login('127.0.0.2', 'kate', 'guess-guess')).status);
    assert.deepEqual(statuses, [401, 401, 401, 429, 429, 429], 'the guessing address is refused after login_per_username wrong passwords');
    const limited = await audited('rate_limited', (line) => line.limit === 'rate_limit.login_per_username' && line.address === '127.0.0.2');
    assert.equal(limited.level, 40, 'at warn');
    const owner = await login('127.0.0.3', 'kate', 'kate-password');
    assert.equal(owner.status, 201, 'the owner logs in from another address');
    secrets.push(owner.body.token);
    await audited('login', (line) => line.user_id === owner.body.user.id && line.device_id === owner.body.device.id && line.address === '127.0.0.3');

    // Guesses from a second address pass login_slowdown_after (5 across all addresses): attempts now wait, none is refused.
    for (let i = 0; i < 3; i++) assert.equal((await login('127.0.0.4', 'kate', 'guess-guess')).status, 401);
    const started = Date.now();
    const slowed = await login('127.0.0.3', 'kate', 'kate-password');
    assert.equal(slowed.status, 201, 'the right password still logs in');
    secrets.push(slowed.body.token);
    assert.ok(Date.now() - started >= 300, 'after login_slowdown_ms');
    await audited('rate_limited', (line) => line.limit === 'rate_limit.login_slowdown_after' && line.reason === 'slowed' && line.address === '127.0.0.3');
    const failed = await audited('login_failed', (line) => line.address === '127.0.0.4');
    assert.equal(failed.user_id, owner.body.user.id);
    assert.equal(failed.reason, 'invalid_credentials');
  });

  it('lets a page of any origin connect and authenticate with a token it holds: tokens travel only in the auth frame', async () => {
    await addUser('nina', 'nina-password');
    const nina = await signIn('nina', 'nina-password');
    for (const origin of ['https://elsewhere.example', 'null']) {
      const socket = new TestSocket(new WebSocket(server.wsUrl, { origin }));
      await socket.opened;
      const welcome = await socket.call({ type: 'auth', id: 'a1', token: nina.token });
      assert.equal(welcome.type, 'welcome', `Origin: ${origin}`);
      socket.ws.close();
      await socket.closed;
    }
  });

  it('audits refused tokens and the frame limit of a live connection', async () => {
    const socket = await TestSocket.connect(server.wsUrl);
    socket.send({ type: 'auth', id: 'a1', token: 'not-a-token-at-all' });
    await socket.closed;
    await audited('token_refused', (line) => line.reason === 'unauthorized' && line.address === '127.0.0.1');

    await addUser('liam', 'liam-password');
    const liam = await signIn('liam', 'liam-password');
    const live = new TestSocket(new WebSocket(server.wsUrl));
    await live.opened;
    live.send({ type: 'auth', id: 'a1', token: liam.token });
    await live.nextEvent('welcome');
    for (let i = 0; i < 30; i++) live.send({ type: 'ping', id: `p${i}` });
    await live.nextEvent((frame: { type: string; error?: { code: string } }) => frame.type === 'error' && frame.error?.code === 'rate_limited');
    await audited('rate_limited', (line) => line.limit === 'websocket.frames_per_second' && line.user_id === liam.userId && line.device_id === liam.deviceId);
    live.ws.close();
    assert.equal(server.logs.filter((line) => line.audit === 'rate_limited' && line.device_id === liam.deviceId).length, 1, 'once per connection, not per frame');
  });

  it('audits logins, failures, registrations, revocations and every admin action, and logs no password, token or invite code', async () => {
    // Through the server.
    await addUser('mona', 'mona-password');
    const mona = await signIn('mona', 'mona-password');
    const other = await signIn('mona', 'mona-password');
    secrets.push('mona-new-password');
    assert.equal((await request(`${server.url}/v1/me/password`, { token: mona.token, body: { current_password: 'mona-wrong', new_password: 'x' } })).status, 401);
    const changed = await request(`${server.url}/v1/me/password`, { token: mona.token, body: { current_password: 'mona-password', new_password: 'mona-new-password' } });
    assert.equal(changed.status, 200);
    assert.equal((await request(`${server.url}/v1/logout`, { token: mona.token, method: 'POST' })).status, 204);
    assert.equal((await request(`${server.url}/v1/me`, { token: other.token })).status, 401);
    await audited('password_change_failed', (line) => line.user_id === mona.userId && line.device_id === mona.deviceId);
    await audited('password_changed', (line) => line.user_id === mona.userId && line.address === '127.0.0.1');
    await audited('tokens_revoked', (line) => line.reason === 'password_change' && JSON.stringify(line.device_ids) === JSON.stringify([other.deviceId]));
    await audited('tokens_revoked', (line) => line.reason === 'logout' && JSON.stringify(line.device_ids) === JSON.stringify([mona.deviceId]));
    await audited('register', (line) => typeof line.user_id === 'number' && typeof line.invite_id === 'number' && line.address === '127.0.0.1');
    await audited('token_refused', (line) => line.reason === 'unauthorized' && line.address === '127.0.0.1');

    // Through the CLI.
    const phone = await signIn('mona', 'mona-new-password');
    const laptop = await signIn('mona', 'mona-new-password');
    assert.equal((await chatd(['device', 'revoke', String(phone.deviceId)])).code, 0);
    secrets.push('mona-third-password');
    assert.equal((await chatd(['user', 'passwd', 'mona', '--revoke-devices'], 'mona-third-password\n')).code, 0);
    const invite = JSON.parse((await chatd(['invite', 'create', '--json'])).stdout);
    secrets.push(invite.code);
    assert.equal((await chatd(['invite', 'revoke', invite.code])).code, 0);
    assert.equal((await chatd(['user', 'delete', 'mona', '--yes'])).code, 0);

    const file = join(data, 'audit.log');
    assert.equal(statSync(file).mode & 0o777, 0o600, 'only its owner reads the admin audit log');
    const cli = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Line);
    for (const line of cli) {
      assert.equal(line.via, 'cli');
      assert.equal(typeof line.os_user, 'string');
    }
    const find = (event: string, match: (line: Line) => boolean = () => true) => {
      const found = cli.find((line) => line.audit === event && match(line));
      assert.ok(found, `${event} in audit.log: ${JSON.stringify(cli.map((line) => line.audit))}`);
      return found;
    };
    find('admin_user_added', (line) => line.user_id === mona.userId);
    find('admin_device_revoked', (line) => line.user_id === mona.userId && line.device_id === phone.deviceId);
    find('tokens_revoked', (line) => line.reason === 'admin_device_revoke' && JSON.stringify(line.device_ids) === JSON.stringify([phone.deviceId]));
    find('admin_password_set', (line) => line.user_id === mona.userId);
    find('tokens_revoked', (line) => line.reason === 'admin_passwd' && JSON.stringify(line.device_ids) === JSON.stringify([laptop.deviceId]));
    find('admin_invite_created', (line) => line.invite_id === invite.id);
    find('admin_invite_revoked', (line) => line.invite_id === invite.id);
    find('admin_user_deleted', (line) => line.user_id === mona.userId);
    find('admin_user_disabled');
    find('tokens_revoked', (line) => line.reason === 'admin_user_disable');
    find('admin_user_enabled');

    // No secret anywhere: the server's log as written, and the admin audit log.
    const everything = JSON.stringify(server.logs) + readFileSync(file, 'utf8');
    assert.ok(secrets.length >= 15);
    for (const secret of secrets) assert.ok(!everything.includes(secret), `a secret (${secret.slice(0, 3)}…) appears in a log`);
  });
});

/** The uid to run a command as another account (nobody), or undefined with the test skipped where that cannot be done. */
function anotherAccount(t: TestContext): number | undefined {
  const nobody = 65534;
  const probe = spawnSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(CHATD_BIN)}, require('fs').constants.R_OK)`], { uid: nobody, gid: nobody });
  if (process.getuid?.() === 0 && probe.status === 0) return nobody;
  t.skip('needs root, and a checkout that another account may read, to run the command as another account');
  return undefined;
}

describe('the admin audit log', () => {
  it('stops an admin command before it changes anything when its audit line could not be written', async (t) => {
    const nobody = anotherAccount(t);
    if (nobody === undefined) return;
    const dir = tempDir();
    chmodSync(dir, 0o755);
    const data = join(dir, 'data');
    const args = ['--data', data, '--config', writeConfig(dir, '')];
    const server = await startServer(args);
    assert.equal(await server.stop(), 0);
    assert.equal((await runCli(['user', 'add', 'bob', ...args], { input: 'bob-password\n' })).code, 0, 'as root: audit.log is now root’s, 0600');
    // The data directory goes to the service account, as a package install would leave it; audit.log stays root's.
    for (const file of readdirSync(data)) if (file !== 'audit.log') chownSync(join(data, file), nobody, nobody);
    chownSync(data, nobody, nobody);
    const asService = spawnSync(process.execPath, [CHATD_BIN, 'user', 'disable', 'bob', ...args], { uid: nobody, gid: nobody, env: cleanEnv(), encoding: 'utf8' });
    assert.notEqual(asService.status, 0);
    assert.match(asService.stderr, /cannot write the admin audit log .*audit\.log/);
    const list = await runCli(['user', 'list', '--json', ...args]);
    assert.equal(JSON.parse(list.stdout)[0].disabled, false, 'bob was not disabled');
  });

  it('stops `db migrate` on SQLite before it migrates when its audit line could not be written', async (t) => {
    const nobody = anotherAccount(t);
    if (nobody === undefined) return;
    const dir = tempDir();
    chmodSync(dir, 0o755);
    const data = join(dir, 'data');
    mkdirSync(data);
    // A database one migration behind, the service account's; an audit.log that an earlier `sudo chatd …` left to root.
    const migrations = loadMigrations();
    const old = openDatabase({ file: join(data, 'chatd.db'), synchronous: 'full', busyTimeoutMs: 1_000 });
    migrate(old, migrations.slice(0, -1));
    old.close();
    writeFileSync(join(data, 'audit.log'), '', { mode: 0o600 });
    for (const file of readdirSync(data)) if (file !== 'audit.log') chownSync(join(data, file), nobody, nobody);
    chownSync(data, nobody, nobody);
    const args = ['db', 'migrate', '--data', data, '--config', writeConfig(dir, '')];
    const asService = spawnSync(process.execPath, [CHATD_BIN, ...args], { uid: nobody, gid: nobody, env: cleanEnv(), encoding: 'utf8' });
    assert.notEqual(asService.status, 0);
    assert.match(asService.stderr, /cannot write the admin audit log .*audit\.log/);
    const db = new Database(join(data, 'chatd.db'), { readonly: true });
    try {
      assert.equal(db.pragma('user_version', { simple: true }), latestVersion(migrations) - 1, 'no migration was applied');
    } finally {
      db.close();
    }
  });
});
