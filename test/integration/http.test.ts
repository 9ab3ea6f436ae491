import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request, signUp } from '../helpers/http.js';
import { type ServerProcess, runCli, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { transports } from '../helpers/transports.js';

/** Wrong passwords allowed per username from one address in these servers. */
const LOGIN_LIMIT = 6;

for (const transport of transports('HTTP API')) {
  describe(`HTTP API on the ${transport} transport`, () => {
    let server: ServerProcess;
    let data: string;
    let config: string;

    before(async () => {
      const dir = tempDir();
      data = `${dir}/data`;
      config = writeConfig(dir, `
[accounts]
registration = "open"
[rate_limit]
login_per_username = ${LOGIN_LIMIT}
login_per_address = 1000
window_seconds = 3600
[http]
max_body_bytes = 2048
`);
      server = await startServer(['--data', data, '--config', config, '--transport', transport]);
    });
    after(() => server.stop());

    it(`says in its banner that it runs on ${transport}`, () => {
      assert.match(server.banner, new RegExp(`transport ${transport}`));
    });

    it('answers /healthz and /readyz', async () => {
      assert.deepEqual((await request(`${server.url}/healthz`)).body, { status: 'ok' });
      // With SQLite and no bus, both engines are in the process: no round trips, so no latency.
      assert.deepEqual((await request(`${server.url}/readyz`)).body, {
        status: 'ready',
        engines: { storage: { engine: 'sqlite', ok: true }, bus: { engine: 'memory', ok: true } },
      });
    });

    it('registers, logs in, shows the account and its devices, and logs out', async () => {
      const registered = await request(`${server.url}/v1/register`, { body: { username: 'alice', password: 'wonderland', display_name: 'Alice' } });
      assert.equal(registered.status, 201);
      assert.deepEqual(registered.body.user, { id: registered.body.user.id, username: 'alice', display_name: 'Alice' });

      const login = await request(`${server.url}/v1/login`, {
        body: { username: 'alice', password: 'wonderland', device_name: 'phone', platform: 'ios' },
      });
      assert.equal(login.status, 201);
      assert.match(login.body.token, /^[A-Za-z0-9_-]{43}$/, '256 random bits, base64url');
      assert.equal(login.body.device.name, 'phone');
      const token = login.body.token;

      const me = await request(`${server.url}/v1/me`, { token });
      assert.equal(me.body.user.username, 'alice');
      assert.equal(me.body.device_id, login.body.device.id);

      const second = await request(`${server.url}/v1/login`, {
        body: { username: 'ALICE', password: 'wonderland', device_name: 'laptop', platform: 'desktop' },
      });
      assert.equal(second.status, 201, 'usernames are case-insensitive');
      const devices = await request(`${server.url}/v1/devices`, { token });
      assert.deepEqual(
        devices.body.devices.map((d: any) => [d.name, d.current]),
        [
          ['phone', true],
          ['laptop', false],
        ],
      );

      assert.equal((await request(`${server.url}/v1/logout`, { method: 'POST', token })).status, 204);
      const refused = await request(`${server.url}/v1/me`, { token });
      assert.equal(refused.status, 401);
      assert.equal(refused.body.error.code, 'unauthorized');
      assert.equal((await request(`${server.url}/v1/me`, { token: second.body.token })).status, 200, 'the other device stays logged in');
    });

    it('revokes one of my devices, whose token then stops working', async () => {
      const phone = await signUp(server.url, 'bob');
      const laptop = await request(`${server.url}/v1/login`, {
        body: { username: 'bob', password: 'correct horse', device_name: 'laptop', platform: 'desktop' },
      });
      const revoke = await request(`${server.url}/v1/devices/${laptop.body.device.id}`, { method: 'DELETE', token: phone.token });
      assert.equal(revoke.status, 204);
      assert.equal((await request(`${server.url}/v1/me`, { token: laptop.body.token })).status, 401);
      const again = await request(`${server.url}/v1/devices/${laptop.body.device.id}`, { method: 'DELETE', token: phone.token });
      assert.equal(again.status, 404);
    });

    it("does not let me revoke someone else's device", async () => {
      const carol = await signUp(server.url, 'carol');
      const dave = await signUp(server.url, 'dave');
      const attempt = await request(`${server.url}/v1/devices/${dave.deviceId}`, { method: 'DELETE', token: carol.token });
      assert.equal(attempt.status, 404);
      assert.equal((await request(`${server.url}/v1/me`, { token: dave.token })).status, 200);
    });

    it('refuses a wrong password and an unknown user alike', async () => {
      await signUp(server.url, 'erin');
      const wrong = await request(`${server.url}/v1/login`, { body: { username: 'erin', password: 'nope-nope', device_name: 'x', platform: 'web' } });
      const unknown = await request(`${server.url}/v1/login`, { body: { username: 'nobody', password: 'nope-nope', device_name: 'x', platform: 'web' } });
      assert.equal(wrong.status, 401);
      assert.deepEqual(wrong.body, unknown.body);
      assert.equal(wrong.body.error.code, 'invalid_credentials');
    });

    it('refuses an address that keeps giving wrong passwords for a username with 429 and Retry-After', async () => {
      await signUp(server.url, 'frank'); // a right password counts for nothing
      const attempt = () => request(`${server.url}/v1/login`, { body: { username: 'frank', password: 'guess-guess', device_name: 'x', platform: 'web' } });
      for (let i = 0; i < LOGIN_LIMIT; i++) assert.equal((await attempt()).status, 401);
      const limited = await attempt();
      assert.equal(limited.status, 429);
      assert.equal(limited.body.error.code, 'rate_limited');
      assert.ok(Number(limited.headers.get('retry-after')) >= 1, 'Retry-After in seconds');
      const right = await request(`${server.url}/v1/login`, { body: { username: 'frank', password: 'correct horse', device_name: 'x', platform: 'web' } });
      assert.equal(right.status, 429, 'from that address even the right password waits (other addresses do not: accounts-security.test.ts)');
    });

    it('changes the password, signing out the other devices', async () => {
      const first = await signUp(server.url, 'grace');
      const second = await request(`${server.url}/v1/login`, { body: { username: 'grace', password: 'correct horse', device_name: 'b', platform: 'web' } });
      const wrong = await request(`${server.url}/v1/me/password`, { token: first.token, body: { current_password: 'bad', new_password: 'battery staple' } });
      assert.equal(wrong.status, 401);
      const changed = await request(`${server.url}/v1/me/password`, {
        token: first.token,
        body: { current_password: 'correct horse', new_password: 'battery staple' },
      });
      assert.equal(changed.status, 200);
      assert.equal(changed.body.revoked_devices, 1);
      assert.equal((await request(`${server.url}/v1/me`, { token: first.token })).status, 200);
      assert.equal((await request(`${server.url}/v1/me`, { token: second.body.token })).status, 401);
      const login = await request(`${server.url}/v1/login`, { body: { username: 'grace', password: 'battery staple', device_name: 'c', platform: 'web' } });
      assert.equal(login.status, 201);
    });

    it('refuses a taken username and bad fields, naming the field', async () => {
      await signUp(server.url, 'heidi');
      const taken = await request(`${server.url}/v1/register`, { body: { username: 'HEIDI', password: 'whatever1' } });
      assert.equal(taken.status, 409);
      assert.equal(taken.body.error.code, 'username_taken');
      const cases: Array<[unknown, string]> = [
        [{ password: 'whatever1' }, 'username'],
        [{ username: 'x', password: 'whatever1' }, 'username'],
        [{ username: 'has space', password: 'whatever1' }, 'username'],
        [{ username: 'ivan', password: 'short' }, 'password'],
        [{ username: 'ivan', password: 12345678 }, 'password'],
      ];
      for (const [body, field] of cases) {
        const response = await request(`${server.url}/v1/register`, { body });
        assert.equal(response.status, 400, JSON.stringify(body));
        assert.equal(response.body.error.code, 'invalid_field');
        assert.equal(response.body.error.field, field);
      }
      const platform = await request(`${server.url}/v1/login`, { body: { username: 'heidi', password: 'correct horse', device_name: 'x', platform: 'toaster' } });
      assert.equal(platform.body.error.field, 'platform');
      assert.match(platform.body.error.message, /one of ios, android, web/);
    });

    it('rejects malformed, mistyped and oversized bodies clearly', async () => {
      const malformed = await request(`${server.url}/v1/login`, { raw: '{"username":', headers: { 'content-type': 'application/json' } });
      assert.equal(malformed.status, 400);
      assert.equal(malformed.body.error.code, 'invalid_json');
      const array = await request(`${server.url}/v1/login`, { raw: '[]', headers: { 'content-type': 'application/json' } });
      assert.match(array.body.error.message, /must be a JSON object/);
      const form = await request(`${server.url}/v1/login`, { raw: 'a=b', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      assert.equal(form.status, 415);
      const huge = await request(`${server.url}/v1/register`, { body: { username: 'big', password: 'x'.repeat(4096) } });
      assert.equal(huge.status, 413);
      assert.equal(huge.body.error.code, 'payload_too_large');
      assert.match(huge.body.error.message, /2048 bytes/);
      assert.equal((await request(`${server.url}/healthz`)).status, 200, 'the server carries on');
    });

    it('answers unknown paths with 404, wrong methods with 405, and a plain GET of the socket with 426', async () => {
      const missing = await request(`${server.url}/v2/nothing`);
      assert.equal(missing.status, 404);
      assert.equal(missing.body.error.code, 'not_found');
      const method = await request(`${server.url}/v1/login`, { method: 'PUT' });
      assert.equal(method.status, 405);
      assert.equal(method.headers.get('allow'), 'POST');
      const socket = await request(`${server.url}/v1/ws`);
      assert.equal(socket.status, 426);
    });

    it('refuses a missing or malformed Authorization header', async () => {
      const none = await request(`${server.url}/v1/devices`);
      assert.equal(none.status, 401);
      assert.match(none.body.error.message, /Authorization: Bearer/);
      const bad = await request(`${server.url}/v1/devices`, { headers: { authorization: 'Basic abc' } });
      assert.equal(bad.status, 401);
    });

    it('refuses a user disabled by the admin CLI while the server runs, login and token both', async () => {
      const judy = await signUp(server.url, 'judy');
      const disabled = await runCli(['user', 'disable', 'judy', '--data', data, '--config', config]);
      assert.equal(disabled.code, 0, disabled.stderr);
      const login = await request(`${server.url}/v1/login`, { body: { username: 'judy', password: 'correct horse', device_name: 'x', platform: 'web' } });
      assert.equal(login.status, 403);
      assert.equal(login.body.error.code, 'account_disabled');
      assert.equal((await request(`${server.url}/v1/me`, { token: judy.token })).status, 401, 'disabling logged the device out');
      assert.equal((await runCli(['user', 'enable', 'judy', '--data', data, '--config', config])).code, 0);
      assert.equal((await request(`${server.url}/v1/me`, { token: judy.token })).status, 401, 'and enabling does not bring its token back');
      const again = await request(`${server.url}/v1/login`, { body: { username: 'judy', password: 'correct horse', device_name: 'x', platform: 'web' } });
      assert.equal(again.status, 201);
    });
  });
}

describe('registration modes', () => {
  it('"invite" (the default) registers only with a valid, unused invite code', async () => {
    const dir = tempDir();
    const args = ['--data', `${dir}/data`, '--config', writeConfig(dir, '')];
    // Only `serve` creates the database: the admin makes the invite while the server runs.
    const server = await startServer(args);
    try {
      const created = await runCli(['invite', 'create', '--uses', '1', ...args]);
      assert.equal(created.code, 0, created.stderr);
      const code = created.stdout.trim();
      assert.match(server.banner, /registration invite/);
      const none = await request(`${server.url}/v1/register`, { body: { username: 'kim', password: 'whatever1' } });
      assert.equal(none.status, 403);
      assert.equal(none.body.error.code, 'invite_invalid');
      const wrong = await request(`${server.url}/v1/register`, { body: { username: 'kim', password: 'whatever1', invite: 'aaaa-bbbb-cccc-dddd' } });
      assert.equal(wrong.body.error.code, 'invite_invalid');
      const ok = await request(`${server.url}/v1/register`, { body: { username: 'kim', password: 'whatever1', invite: code } });
      assert.equal(ok.status, 201);
      const reused = await request(`${server.url}/v1/register`, { body: { username: 'lee', password: 'whatever1', invite: code } });
      assert.equal(reused.body.error.code, 'invite_invalid', 'a one-use code works once');
      const list = await runCli(['invite', 'list', '--json', ...args]);
      assert.deepEqual(JSON.parse(list.stdout).map((i: any) => [i.prefix, i.uses, i.usable]), [[code.slice(0, 4), 1, false]]);
    } finally {
      await server.stop();
    }
  });

  it('"closed" refuses every registration', async () => {
    const dir = tempDir();
    const server = await startServer(['--data', `${dir}/data`, '--config', writeConfig(dir, '[accounts]\nregistration = "closed"\n')]);
    try {
      const response = await request(`${server.url}/v1/register`, { body: { username: 'kim', password: 'whatever1' } });
      assert.equal(response.status, 403);
      assert.equal(response.body.error.code, 'registration_closed');
    } finally {
      await server.stop();
    }
  });
});
