import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { openPostgres } from '../../src/storage/postgres/database.js';
import { PostgresAccountsStorage } from '../../src/storage/postgres/accounts.js';
import { freeLocalPort } from '../helpers/engine-process.js';
import { type PgServer, startPostgres } from '../helpers/postgres.js';
import { logIn } from '../helpers/http.js';
import { runCli, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { connectAuthenticated } from '../helpers/ws.js';

/**
 * The admin CLI with storage.url (CHATD_STORAGE_URL): the same commands as on
 * SQLite, against a real PostgreSQL, from a machine that holds no SQLite file.
 */

async function query<R extends Record<string, unknown>>(url: string, text: string, values: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  client.setTypeParser(20, (value: string) => Number(value));
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** A device as a login makes it, written through the PostgreSQL storage (no node runs in these tests). */
async function addDevice(url: string, userId: number, name: string): Promise<number> {
  const db = await openPostgres(url, { poolSize: 1, migrate: false });
  try {
    const outcome = await new PostgresAccountsStorage(db).addDevice({ userId, name, platform: 'web', tokenHash: randomBytes(32), now: Date.now() });
    assert.equal(outcome.kind, 'added');
    return (outcome as { deviceId: number }).deviceId;
  } finally {
    await db.close();
  }
}

describe('admin commands on PostgreSQL (storage.url)', { timeout: 600_000 }, () => {
  let server: PgServer;
  before(async () => {
    server = await startPostgres();
  });
  after(() => server.stop());

  /** A migrated database, as a node leaves it at its first start, and a machine with a config and no data directory. */
  async function deployment(): Promise<{ url: string; dir: string; data: string; chatd: (command: string[], input?: string) => ReturnType<typeof runCli> }> {
    const url = await server.freshDatabase();
    const dir = tempDir();
    const data = join(dir, 'admin-data');
    const config = writeConfig(dir, '');
    const chatd = (command: string[], input?: string) =>
      runCli([...command, '--config', config, '--data', data], { env: { CHATD_STORAGE_URL: url }, ...(input === undefined ? {} : { input }) });
    const migrated = await chatd(['db', 'migrate']);
    assert.equal(migrated.code, 0, migrated.stderr);
    return { url, dir, data, chatd };
  }

  it('adds, lists, disables and enables users, in PostgreSQL, auditing the changes on the machine that ran them', async () => {
    const { url, data, chatd } = await deployment();
    const added = await chatd(['user', 'add', 'alice', '--display-name', 'Alice L.'], 'wonderland\n');
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, /created user alice \(id \d+\)/);
    assert.equal((await chatd(['user', 'add', 'bob'], 'builder12\n')).code, 0);
    const taken = await chatd(['user', 'add', 'ALICE'], 'whatever1\n');
    assert.equal(taken.code, 1);
    assert.match(taken.stderr, /the username "ALICE" is taken/);

    const rows = await query<{ username: string; display_name: string; disabled: boolean }>(url, 'SELECT username, display_name, disabled FROM users ORDER BY id');
    assert.deepEqual(rows, [
      { username: 'alice', display_name: 'Alice L.', disabled: false },
      { username: 'bob', display_name: 'bob', disabled: false },
    ]);

    const table = await chatd(['user', 'list']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^ID\s+USERNAME\s+DISPLAY NAME\s+STATUS/);
    assert.match(table.stdout, /alice\s+Alice L\.\s+active/);
    const json = JSON.parse((await chatd(['user', 'list', '--json'])).stdout) as Array<{ id: number; username: string; disabled: boolean }>;
    assert.deepEqual(
      json.map((user) => user.username),
      ['alice', 'bob'],
    );
    const alice = json.find((user) => user.username === 'alice');
    assert.ok(alice);

    const device = await addDevice(url, alice.id, 'laptop');
    const disabled = await chatd(['user', 'disable', 'alice']);
    assert.equal(disabled.code, 0, disabled.stderr);
    assert.match(disabled.stdout, /user alice disabled; 1 device\(s\) logged out/);
    const [stored] = await query<{ disabled: boolean }>(url, 'SELECT disabled FROM users WHERE id = $1', [alice.id]);
    assert.equal(stored?.disabled, true);
    const [revoked] = await query<{ revoked_at: number | null }>(url, 'SELECT revoked_at FROM devices WHERE id = $1', [device]);
    assert.notEqual(revoked?.revoked_at, null);
    // The nodes learn of it from the account events, recorded in the same commit.
    const events = await query<{ reason: string; user_id: number }>(url, 'SELECT reason, user_id FROM account_events');
    assert.deepEqual(events, [{ reason: 'user_disabled', user_id: alice.id }]);
    assert.match((await chatd(['user', 'list'])).stdout, /alice\s+Alice L\.\s+disabled/);
    assert.equal((await chatd(['user', 'enable', 'alice'])).code, 0);
    assert.match((await chatd(['user', 'list'])).stdout, /alice\s+Alice L\.\s+active/);

    // The audit log of the admin CLI: on the machine the commands ran on, in storage.dir (made for it).
    const audit = readFileSync(join(data, 'audit.log'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { audit: string; via: string });
    assert.deepEqual(
      audit.map((line) => line.audit),
      // The first: the `db migrate` that made the deployment's schema.
      ['admin_database_migrated', 'admin_user_added', 'admin_user_added', 'admin_user_disabled', 'tokens_revoked', 'admin_user_enabled'],
    );
    assert.ok(audit.every((line) => line.via === 'cli'));
    assert.ok(!readdirSync(data).some((name) => name.startsWith('chatd.db')), 'no SQLite database was made');
  });

  it("lists and revokes a user's devices, then logs them all out with a new password and deletes the user", async () => {
    const { url, chatd } = await deployment();
    assert.equal((await chatd(['user', 'add', 'carol'], 'carol-password\n')).code, 0);
    const [carol] = await query<{ id: number }>(url, `SELECT id FROM users WHERE username = 'carol'`);
    assert.ok(carol);
    const phone = await addDevice(url, carol.id, 'phone');
    const laptop = await addDevice(url, carol.id, 'laptop');

    const table = await chatd(['device', 'list', 'carol']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^ID\s+NAME\s+PLATFORM\s+CREATED\s+LAST SEEN\s+STATUS/);
    assert.match(table.stdout, new RegExp(`${phone}\\s+phone\\s+web\\s+\\S+\\s+\\S+\\s+active`));

    const revoked = await chatd(['device', 'revoke', String(phone)]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal(revoked.stdout, `device ${phone} revoked\n`);
    const live = JSON.parse((await chatd(['device', 'list', 'carol', '--json'])).stdout) as Array<{ id: number }>;
    assert.deepEqual(
      live.map((device) => device.id),
      [laptop],
    );
    const all = JSON.parse((await chatd(['device', 'list', 'carol', '--all', '--json'])).stdout) as Array<{ id: number; revoked_at: number | null }>;
    assert.equal(all.find((device) => device.id === phone)?.revoked_at !== null, true);
    const events = await query<{ reason: string; device_id: number }>(url, 'SELECT reason, device_id FROM account_events');
    assert.deepEqual(events, [{ reason: 'device_revoked', device_id: phone }]);

    const unknown = await chatd(['device', 'revoke', '999']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /device 999/);

    const passwd = await chatd(['user', 'passwd', 'carol', '--revoke-devices'], 'new-carol-password\n');
    assert.equal(passwd.code, 0, passwd.stderr);
    assert.match(passwd.stdout, /password of carol changed; 1 device\(s\) logged out/);
    assert.deepEqual(JSON.parse((await chatd(['device', 'list', 'carol', '--json'])).stdout), []);
    const deleted = await chatd(['user', 'delete', 'carol', '--yes']);
    assert.equal(deleted.code, 0, deleted.stderr);
    const [gone] = await query<{ deleted_at: number | null; password_hash: string | null }>(url, 'SELECT deleted_at, password_hash FROM users WHERE id = $1', [carol.id]);
    assert.notEqual(gone?.deleted_at, null);
    assert.equal(gone?.password_hash, null);
    assert.equal((await chatd(['user', 'list'])).stdout, '(none)\n');
  });

  it('creates and lists invites, which are stored hashed', async () => {
    const { url, chatd } = await deployment();
    const created = await chatd(['invite', 'create', '--uses', '3', '--note', 'book club']);
    assert.equal(created.code, 0, created.stderr);
    const code = created.stdout.trim();
    assert.match(code, /^[a-z2-9]{4}(-[a-z2-9]{4}){3}$/);
    const json = JSON.parse((await chatd(['invite', 'create', '--expires', 'never', '--json'])).stdout) as { id: number; code: string; expires_at: number | null };
    assert.equal(json.expires_at, null);

    const table = await chatd(['invite', 'list']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, new RegExp(`${code.slice(0, 4)}-…\\s+0/3\\s+\\S+\\s+usable\\s+book club`));
    const listed = JSON.parse((await chatd(['invite', 'list', '--json'])).stdout) as Array<{ id: number }>;
    assert.equal(listed.length, 2);
    const rows = await query<{ note: string; max_uses: number }>(url, 'SELECT note, max_uses FROM invites ORDER BY id');
    assert.deepEqual(rows, [
      { note: 'book club', max_uses: 3 },
      { note: '', max_uses: 1 },
    ]);
    const stored = JSON.stringify(await query(url, 'SELECT * FROM invites'));
    assert.ok(!stored.includes(code) && !stored.includes(json.code), 'only hashes of the codes are stored');

    assert.equal((await chatd(['invite', 'revoke', code])).code, 0);
    assert.match((await chatd(['invite', 'list'])).stdout, /0\/3\s+\S+\s+revoked\s+book club/);
  });

  it("reports stats, with PostgreSQL's size, schema version, epoch and URL without its password", async () => {
    const { url, chatd } = await deployment();
    assert.equal((await chatd(['user', 'add', 'dave'], 'dave-password\n')).code, 0);
    assert.equal((await chatd(['user', 'add', 'erin'], 'erin-password\n')).code, 0);
    assert.equal((await chatd(['user', 'disable', 'erin'])).code, 0);
    assert.equal((await chatd(['invite', 'create'])).code, 0);

    const result = await chatd(['stats', '--json']);
    assert.equal(result.code, 0, result.stderr);
    const stats = JSON.parse(result.stdout) as Record<string, unknown>;
    const [{ version } = { version: 0 }] = await query<{ version: number }>(url, 'SELECT max(version) AS version FROM schema_migrations');
    const [{ value: epoch } = { value: '' }] = await query<{ value: string }>(url, `SELECT value FROM meta WHERE key = 'epoch'`);
    const [{ bytes } = { bytes: 0 }] = await query<{ bytes: number }>(url, 'SELECT pg_database_size(current_database()) AS bytes');
    assert.equal(stats.users, 2);
    assert.equal(stats.disabled_users, 1);
    assert.equal(stats.devices, 0);
    assert.equal(stats.invites_open, 1);
    assert.equal(stats.schema_version, version);
    assert.ok(version > 0);
    assert.equal(stats.epoch, epoch);
    assert.equal(stats.engine, 'postgres');
    assert.equal(stats.database, url);
    // Within a few pages of what PostgreSQL says now (autovacuum may have written since).
    assert.ok(typeof stats.database_bytes === 'number' && Math.abs(stats.database_bytes - bytes) < 1024 * 1024, `${String(stats.database_bytes)} vs ${bytes}`);

    const text = await chatd(['stats']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /users:\s+2 \(1 disabled\)/);
    assert.match(text.stdout, /invites:\s+1 usable/);
    assert.ok(text.stdout.includes(`database:  ${url}, `), text.stdout);
    assert.match(text.stdout, new RegExp(`MiB, schema version ${version}\\n$`));
  });

  it('names the URL without its password when the server is given with one', async () => {
    const { url } = await deployment();
    // Trust authentication: the password is ignored by the server, and must not be printed.
    const withPassword = url.replace('postgres://postgres@', 'postgres://postgres:hunter2-secret@');
    const dir = tempDir();
    const result = await runCli(['stats', '--config', writeConfig(dir, ''), '--data', join(dir, 'data')], { env: { CHATD_STORAGE_URL: withPassword } });
    assert.equal(result.code, 0, result.stderr);
    assert.ok(!result.stdout.includes('hunter2'), result.stdout);
    assert.match(result.stdout, /database:\s+postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/chatd_test_\d+, /);
  });

  it('reaches a node running on the same PostgreSQL: a user the CLI adds logs in there, a device it revokes is closed there (4006)', async () => {
    const url = await server.freshDatabase();
    const nodeDir = tempDir();
    // The node creates the schema at its first start; the CLI runs beside it with a data directory of its own.
    const node = await startServer(['--data', join(nodeDir, 'data'), '--config', writeConfig(nodeDir, '')], { env: { CHATD_STORAGE_URL: url } });
    try {
      const adminDir = tempDir();
      const chatd = (command: string[], input?: string) =>
        runCli([...command, '--config', writeConfig(adminDir, ''), '--data', join(adminDir, 'data')], {
          env: { CHATD_STORAGE_URL: url },
          ...(input === undefined ? {} : { input }),
        });
      assert.equal((await chatd(['user', 'add', 'ivy'], 'ivy-password\n')).code, 0);
      const login = await logIn(node.url, 'ivy', 'ivy-password', 'tablet');
      const live = await connectAuthenticated(node.wsUrl, login.token);
      const listed = JSON.parse((await chatd(['device', 'list', 'ivy', '--json'])).stdout) as Array<{ id: number; name: string }>;
      assert.deepEqual(listed.map((device) => [device.id, device.name]), [[login.deviceId, 'tablet']]);
      const revoked = await chatd(['device', 'revoke', String(login.deviceId)]);
      assert.equal(revoked.code, 0, revoked.stderr);
      // The node reads the account event from PostgreSQL (storage.revocation_poll_ms) and closes the quiet device.
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('the socket was still open five seconds after the command')), 5_000);
      });
      const closed = await Promise.race([live.socket.closed, late]).finally(() => clearTimeout(timer));
      assert.equal(closed.code, 4006);
      assert.match(closed.reason, /device was logged out/);
    } finally {
      await node.stop();
    }
  });

  it('works from a machine with only the URL: no data directory, no SQLite file', async () => {
    const { url } = await deployment();
    const cwd = tempDir();
    const listed = await runCli(['user', 'list'], { cwd, env: { CHATD_STORAGE_URL: url } });
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal(listed.stdout, '(none)\n');
    assert.ok(!existsSync(join(cwd, 'chatd-data', 'chatd.db')), 'no SQLite database was made');
  });

  it('refuses an unreachable PostgreSQL in one line naming the URL without its password, exit 1', async () => {
    const port = await freeLocalPort();
    const dir = tempDir();
    const config = writeConfig(dir, '');
    for (const command of [['user', 'list'], ['user', 'add', 'frank'], ['device', 'revoke', '3'], ['invite', 'create'], ['stats']]) {
      const result = await runCli([...command, '--config', config, '--data', join(dir, 'data')], {
        env: { CHATD_STORAGE_URL: `postgres://chatd:s3cret-pw@127.0.0.1:${port}/chatd` },
        input: 'frank-password\n',
      });
      assert.equal(result.code, 1, `${command.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, new RegExp(`^chatd: cannot use PostgreSQL at postgres://chatd:\\*\\*\\*@127\\.0\\.0\\.1:${port}/chatd: .+\\n$`), command.join(' '));
      assert.ok(!result.stderr.includes('s3cret'), result.stderr);
      assert.equal(result.stdout, '');
    }
    assert.deepEqual(readdirSync(dir), ['config.toml'], 'nothing was made, not even the audit log’s directory');
  });

  it('refuses a database without chatd tables, and leaves it empty', async () => {
    const url = await server.freshDatabase();
    const dir = tempDir();
    const result = await runCli(['user', 'add', 'gina', '--config', writeConfig(dir, ''), '--data', join(dir, 'data')], {
      env: { CHATD_STORAGE_URL: url },
      input: 'gina-password\n',
    });
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /^chatd: the PostgreSQL database at postgres:\/\/.+ holds no chatd tables: check storage\.url/);
    assert.deepEqual(await query(url, `SELECT tablename FROM pg_tables WHERE schemaname = 'public'`), []);
  });

  it('refuses a schema older than this chatd, with the way to upgrade it, and changes nothing', async () => {
    const { url, chatd } = await deployment();
    // As a node of the previous version left it: its last migration not applied yet.
    const [{ version } = { version: 0 }] = await query<{ version: number }>(url, 'DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations) RETURNING version');
    const result = await chatd(['user', 'add', 'hank'], 'hank-password\n');
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, new RegExp(`is version ${version - 1} and this chatd needs ${version}: upgrade the nodes .* or run \`chatd db migrate\``));
    assert.deepEqual(await query(url, 'SELECT id FROM users'), []);
    const [{ count } = { count: 0 }] = await query<{ count: number }>(url, 'SELECT count(*) AS count FROM schema_migrations WHERE version = $1', [version]);
    assert.equal(count, 0, 'the schema was not migrated');

    const newer = await query<{ version: number }>(url, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'from the future', 0) RETURNING version`, [version + 5]);
    assert.equal(newer.length, 1);
    const refused = await chatd(['stats']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, new RegExp(`is version ${version + 5}, newer than this chatd knows \\(${version}\\)`));
  });
});
