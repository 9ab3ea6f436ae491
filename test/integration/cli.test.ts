import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { logIn, request } from '../helpers/http.js';
import { CHATD_BIN, type ServerProcess, cleanEnv, runCli, runOnTerminal, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';

describe('the admin CLI, on the database of a running server', () => {
  let server: ServerProcess;
  let dir: string;
  let args: string[];
  const chatd = (command: string[], input?: string) => runCli([...command, ...args], input === undefined ? {} : { input });

  before(async () => {
    dir = tempDir();
    args = ['--data', join(dir, 'data'), '--config', writeConfig(dir, '')];
    server = await startServer(args);
  });
  after(() => server.stop());

  it('adds a user with the password from standard input, who can then log in', async () => {
    const added = await chatd(['user', 'add', 'alice', '--display-name', 'Alice L.'], 'wonderland\n');
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, /created user alice \(id \d+\)/);
    await logIn(server.url, 'alice', 'wonderland');
  });

  it('asks for a password on a terminal: the prompts stay on screen, nothing typed is echoed, a mismatch is refused', async () => {
    const added = await runOnTerminal(['user', 'add', 'tess', ...args], [
      { after: 'Password for tess: ', type: 'tess-tesla-1\r' },
      { after: 'Repeat the password: ', type: 'tess-tesla-1\r' },
    ]);
    assert.equal(added.code, 0, added.output);
    // readline redrew its empty line over the prompt (to column 1, clear to the end of the screen): people saw nothing.
    assert.doesNotMatch(added.output, /\x1b\[\d*[GJK]/, 'no cursor control after a prompt erases it');
    assert.ok(!added.output.includes('tess-tesla'), 'the password is not shown');
    assert.match(added.output, /Password for tess: \r?\nRepeat the password: \r?\ncreated user tess/);
    await logIn(server.url, 'tess', 'tess-tesla-1');

    // A typing mistake taken back with backspace is not part of the password.
    const corrected = await runOnTerminal(['user', 'add', 'uma', ...args], [
      { after: 'Password for uma: ', type: 'uma-secret-2x\x7f\r' },
      { after: 'Repeat the password: ', type: 'uma-secret-2\r' },
    ]);
    assert.equal(corrected.code, 0, corrected.output);
    await logIn(server.url, 'uma', 'uma-secret-2');

    // An arrow key and a stray Esc type nothing (and Enter still answers); both answers pasted at once, with \r\n.
    const pasted = await runOnTerminal(['user', 'add', 'wendy', ...args], [{ after: 'Password for wendy: ', type: '\x1b[Awendy-secret-4\x1b\r\nwendy-secret-4\r\n' }]);
    assert.equal(pasted.code, 0, pasted.output);
    await logIn(server.url, 'wendy', 'wendy-secret-4');

    const mismatch = await runOnTerminal(['user', 'add', 'vera', ...args], [
      { after: 'Password for vera: ', type: 'vera-secret-2\r' },
      { after: 'Repeat the password: ', type: 'vera-secret-3\r' },
    ]);
    assert.equal(mismatch.code, 1);
    assert.match(mismatch.output, /the passwords do not match/);
  });

  it('lists users as a table and as JSON', async () => {
    await chatd(['user', 'add', 'bob'], 'builder1\n');
    const table = await chatd(['user', 'list']);
    assert.match(table.stdout, /^ID\s+USERNAME\s+DISPLAY NAME\s+STATUS/);
    assert.match(table.stdout, /alice\s+Alice L\.\s+active/);
    const json = JSON.parse((await chatd(['user', 'list', '--json'])).stdout);
    const bob = json.find((u: any) => u.username === 'bob');
    assert.deepEqual(Object.keys(bob).sort(), ['created_at', 'disabled', 'display_name', 'id', 'last_active_at', 'username']);
    assert.equal(bob.disabled, false);
  });

  it('refuses a taken username, a bad username and a short password, with exit code 1', async () => {
    const taken = await chatd(['user', 'add', 'ALICE'], 'whatever1\n');
    assert.equal(taken.code, 1);
    assert.match(taken.stderr, /the username "ALICE" is taken/);
    const bad = await chatd(['user', 'add', 'a b'], 'whatever1\n');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /username must be 3-32 characters/);
    const short = await chatd(['user', 'add', 'carol'], 'short\n');
    assert.equal(short.code, 1);
    assert.match(short.stderr, /password must be at least 8 characters/);
    const none = await chatd(['user', 'add', 'carol'], '');
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no password on standard input/);
  });

  it('changes a password; with --revoke-devices every device must log in again', async () => {
    await chatd(['user', 'add', 'dave'], 'first-password\n');
    const session = await logIn(server.url, 'dave', 'first-password');
    const changed = await chatd(['user', 'passwd', 'dave'], 'second-password\n');
    assert.equal(changed.code, 0, changed.stderr);
    assert.equal((await request(`${server.url}/v1/me`, { token: session.token })).status, 200, 'devices stay logged in by default');
    await logIn(server.url, 'dave', 'second-password');
    const revoking = await chatd(['user', 'passwd', 'dave', '--revoke-devices'], 'third-password\n');
    assert.match(revoking.stdout, /2 device\(s\) logged out/);
    assert.equal((await request(`${server.url}/v1/me`, { token: session.token })).status, 401);
    const unknown = await chatd(['user', 'passwd', 'nobody'], 'whatever1\n');
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no user "nobody"/);
  });

  it('disables and enables a user', async () => {
    await chatd(['user', 'add', 'erin'], 'erin-password\n');
    assert.equal((await chatd(['user', 'disable', 'erin'])).code, 0);
    assert.match((await chatd(['user', 'list'])).stdout, /erin\s+erin\s+disabled/);
    const refused = await request(`${server.url}/v1/login`, { body: { username: 'erin', password: 'erin-password', device_name: 'x', platform: 'cli' } });
    assert.equal(refused.body.error.code, 'account_disabled');
    assert.equal((await chatd(['user', 'enable', 'erin'])).code, 0);
    await logIn(server.url, 'erin', 'erin-password');
  });

  it('deletes a user only with --yes off a terminal, and keeps the username reserved', async () => {
    await chatd(['user', 'add', 'mallory'], 'mallory-pass\n');
    const session = await logIn(server.url, 'mallory', 'mallory-pass');
    const unconfirmed = await chatd(['user', 'delete', 'mallory']);
    assert.equal(unconfirmed.code, 2);
    assert.match(unconfirmed.stderr, /without --yes/);
    assert.equal((await chatd(['user', 'delete', 'mallory', '--yes'])).code, 0);
    assert.doesNotMatch((await chatd(['user', 'list'])).stdout, /mallory/);
    assert.equal((await request(`${server.url}/v1/me`, { token: session.token })).status, 401);
    const again = await chatd(['user', 'add', 'mallory'], 'mallory-pass\n');
    assert.match(again.stderr, /is taken/);
  });

  it("lists a user's devices and revokes one", async () => {
    await chatd(['user', 'add', 'frank'], 'frank-password\n');
    const phone = await logIn(server.url, 'frank', 'frank-password', 'phone');
    const laptop = await logIn(server.url, 'frank', 'frank-password', 'laptop');
    const devices = JSON.parse((await chatd(['device', 'list', 'frank', '--json'])).stdout);
    assert.deepEqual(devices.map((d: any) => d.name), ['phone', 'laptop']);
    const revoked = await chatd(['device', 'revoke', String(laptop.deviceId)]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal((await request(`${server.url}/v1/me`, { token: laptop.token })).status, 401);
    assert.equal((await request(`${server.url}/v1/me`, { token: phone.token })).status, 200);
    assert.match((await chatd(['device', 'list', 'frank'])).stdout, /phone/);
    assert.doesNotMatch((await chatd(['device', 'list', 'frank'])).stdout, /laptop/);
    assert.match((await chatd(['device', 'list', 'frank', '--all'])).stdout, /laptop.*revoked/);
    const twice = await chatd(['device', 'revoke', String(laptop.deviceId)]);
    assert.equal(twice.code, 1);
    const bad = await chatd(['device', 'revoke', 'abc']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /device id must be a positive integer/);
  });

  it('creates, lists and revokes invite codes', async () => {
    const created = await chatd(['invite', 'create', '--uses', '3', '--expires', '2d', '--note', 'book club', '--json']);
    const invite = JSON.parse(created.stdout);
    assert.match(invite.code, /^[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}$/);
    assert.equal(invite.prefix, invite.code.slice(0, 4));
    assert.equal(invite.max_uses, 3);
    assert.equal(invite.expires_at - invite.created_at, 2 * 86_400_000);
    const registered = await request(`${server.url}/v1/register`, { body: { username: 'grace', password: 'grace-password', invite: invite.code } });
    assert.equal(registered.status, 201);
    const listed = (await chatd(['invite', 'list'])).stdout;
    assert.match(listed, new RegExp(`^${invite.id}\\s+${invite.prefix}-…\\s+1/3\\s+\\S+\\s+usable\\s+book club`, 'm'));
    assert.ok(!listed.includes(invite.code), 'the list does not show the code');
    const json = JSON.parse((await chatd(['invite', 'list', '--json'])).stdout);
    assert.deepEqual(Object.keys(json[0]).sort(), ['created_at', 'expires_at', 'id', 'max_uses', 'note', 'prefix', 'revoked', 'usable', 'uses']);
    const revoked = await chatd(['invite', 'revoke', String(invite.id)]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, new RegExp(`invite ${invite.id} \\(${invite.prefix}-…\\) revoked`));
    const refused = await request(`${server.url}/v1/register`, { body: { username: 'heidi', password: 'heidi-password', invite: invite.code } });
    assert.equal(refused.body.error.code, 'invite_invalid');
    assert.match((await chatd(['invite', 'list'])).stdout, /revoked\s+book club/);
    assert.equal((await chatd(['invite', 'revoke', 'zzzz-zzzz-zzzz-zzzz'])).code, 1);
    const again = await chatd(['invite', 'revoke', invite.code.toUpperCase()]);
    assert.equal(again.code, 1, 'found by its code, in any case');
    assert.match(again.stderr, /is already revoked/);
    // By the prefix the list shows, as shown or alone, when one invite not yet revoked has it.
    const second = JSON.parse((await chatd(['invite', 'create', '--json'])).stdout);
    const byPrefix = await chatd(['invite', 'revoke', `${second.prefix}-…`]);
    assert.equal(byPrefix.code, 0, byPrefix.stderr);
    assert.match(byPrefix.stdout, new RegExp(`invite ${second.id} \\(${second.prefix}-…\\) revoked`));
    const gone = await chatd(['invite', 'revoke', second.prefix]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /no invite .*the prefix it shows of one not revoked/);
    const badUses = await chatd(['invite', 'create', '--uses', '0']);
    assert.equal(badUses.code, 2);
    const badExpiry = await chatd(['invite', 'create', '--expires', 'soon']);
    assert.equal(badExpiry.code, 2);
    assert.match(badExpiry.stderr, /use a number with m, h or d/);
  });

  it('backs up the database while the server serves and writes, and the backup passes check', async () => {
    const writes = Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        request(`${server.url}/v1/login`, { body: { username: 'alice', password: 'wonderland', device_name: `d${i}`, platform: 'cli' } }),
      ),
    );
    const file = join(dir, 'backup.db');
    const backup = await chatd(['db', 'backup', file]);
    await writes;
    assert.equal(backup.code, 0, backup.stderr);
    assert.match(backup.stdout, /backed up to .*backup\.db/);
    const check = await runCli(['db', 'check', file]);
    assert.equal(check.code, 0, check.stderr + check.stdout);
    assert.match(check.stdout, /integrity:\s+ok/);
    assert.match(check.stdout, /foreign keys: ok/);
    const again = await chatd(['db', 'backup', file]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already exists/);
    const nowhere = await chatd(['db', 'backup', join(dir, 'missing-dir', 'b.db')]);
    assert.equal(nowhere.code, 2);
    assert.match(nowhere.stderr, /directory .*missing-dir does not exist; create it first/);
    // Restoring the backup must look, to clients, like a different database.
    const restoredDir = join(dir, 'restore-test');
    mkdirSync(restoredDir);
    copyFileSync(file, join(restoredDir, 'chatd.db'));
    const live = JSON.parse((await chatd(['stats', '--json'])).stdout);
    const fromBackup = JSON.parse((await runCli(['stats', '--json', '--data', restoredDir])).stdout);
    assert.notEqual(fromBackup.epoch, live.epoch, 'a backup carries a new epoch');
    assert.equal(fromBackup.users, live.users);
  });

  it('migrates (nothing to do on a current database), checks and reports stats', async () => {
    const migrated = await chatd(['db', 'migrate']);
    const latest = Math.max(...readdirSync(new URL('../../migrations/', import.meta.url)).filter((file) => file.endsWith('.sql')).map((file) => Number(file.slice(0, 4))));
    assert.match(migrated.stdout, new RegExp(`schema is up to date \\(version ${latest}\\)`));
    const check = await chatd(['db', 'check']);
    assert.equal(check.code, 0);
    const stats = JSON.parse((await chatd(['stats', '--json'])).stdout);
    assert.ok(stats.users >= 5);
    assert.ok(stats.database_bytes > 0);
    assert.equal(stats.schema_version, latest);
    assert.match((await chatd(['stats'])).stdout, /users:\s+\d+ \(\d+ disabled\)/);
    const missing = await runCli(['db', 'check', join(dir, 'nope.db')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no database at/);
  });
});

describe('the CLI as a command line', () => {
  it('shows help with examples for every command', async () => {
    for (const command of [['serve'], ['user', 'add'], ['invite', 'create'], ['db', 'backup'], ['device', 'revoke'], ['stats'], ['config', 'check']]) {
      const help = await runCli([...command, '--help']);
      assert.equal(help.code, 0);
      assert.match(help.stdout, /Examples:\n\s+\$ chatd /, `${command.join(' ')} --help has examples`);
    }
  });

  it('exits 2 with a hint on an unknown command, a missing argument or an unknown option', async () => {
    const unknown = await runCli(['frobnicate']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command 'frobnicate'/);
    const missing = await runCli(['user', 'add']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /missing required argument 'username'/);
    const option = await runCli(['stats', '--colour']);
    assert.equal(option.code, 2);
    assert.match(option.stderr, /unknown option '--colour'/);
  });

  it('checks a config file: ok, or each problem named with exit 2', async () => {
    const dir = tempDir();
    const good = join(dir, 'good.toml');
    writeFileSync(good, '[server]\nport = 9000\n');
    const ok = await runCli(['config', 'check', good]);
    assert.equal(ok.code, 0);
    assert.match(ok.stdout, /good\.toml: ok/);
    const bad = join(dir, 'bad.toml');
    writeFileSync(bad, '[server]\nport = "x"\nhots = "a"\n[storage]\nsynchronous = "sometimes"\n');
    const refused = await runCli(['config', 'check', bad]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /server\.port .* must be an integer from 0 to 65535, got "x"/);
    assert.match(refused.stderr, /unknown key server\.hots/);
    assert.match(refused.stderr, /storage\.synchronous .* must be one of "full", "normal", got "sometimes"/);
  });

  it('prints the example configuration, which is config.example.toml', async () => {
    const printed = await runCli(['config', 'example']);
    assert.equal(printed.stdout, readFileSync(new URL('../../config.example.toml', import.meta.url), 'utf8'));
  });

  it('exits quietly when its reader goes away (`chatd config example | head -1`)', async () => {
    const child = spawn(process.execPath, [CHATD_BIN, 'config', 'example'], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // Close our end before chatd writes, as `head` does after its first line.
    child.stdout.destroy();
    const [code] = (await once(child, 'close')) as [number | null];
    assert.equal(stderr, '');
    assert.equal(code, 0);
  });
});
