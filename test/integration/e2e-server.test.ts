import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { TestAccount, TestDevice, approvedDevice, deviceBytes, envelope, loadSodium, openEnvelope, sealEnvelope } from '../helpers/e2e.js';
import { logIn, request, signUp } from '../helpers/http.js';
import { type ServerProcess, runCli, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { transports } from '../helpers/transports.js';
import { type TestSocket, connectAuthenticated } from '../helpers/ws.js';

/**
 * Protocol 2's end-to-end rules as the server keeps them (docs/protocol.md,
 * "Requests: end-to-end encryption"), over real sockets, with keys made by
 * test/helpers/e2e.ts (libsodium, straight from the spec, not the SDK). Every
 * refusal is followed by a look at what is stored: a refused request changes
 * nothing.
 */

const MAX_MESSAGE = 2048;
const MAX_QUEUE = 64 * 1024;

interface Dev {
  readonly socket: TestSocket;
  readonly userId: number;
  readonly deviceId: number;
  readonly token: string;
}

// Both transports: device messages travel on a topic of their own (one device's connections).
for (const transport of transports('protocol 2 on the server')) describe(`end-to-end keys, envelopes and device messages on the server (protocol 2, ${transport} transport)`, { timeout: 120_000 }, () => {
  let server: ServerProcess;
  let data: string;
  let configFile: string;
  const sockets: TestSocket[] = [];
  let names = 0;

  before(async () => {
    await loadSodium();
    const dir = tempDir();
    data = join(dir, 'data');
    const config = `
[accounts]
registration = "open"
[rate_limit]
login_per_address = 100000
[websocket]
frames_per_second = 1000
[e2e]
max_device_message_bytes = ${MAX_MESSAGE}
max_device_queue_bytes = ${MAX_QUEUE}
`;
    configFile = writeConfig(dir, config);
    server = await startServer(['--data', data, '--transport', transport, '--config', configFile]);
  });
  after(async () => {
    for (const socket of sockets) socket.close();
    await server.stop();
  });

  async function connect(token: string, userId: number, deviceId: number): Promise<Dev> {
    const { socket } = await connectAuthenticated(server.wsUrl, token);
    sockets.push(socket);
    return { socket, userId, deviceId, token };
  }

  /** A new user and its first connected device. */
  async function user(prefix = 'u'): Promise<Dev & { name: string }> {
    const name = `${prefix}${++names}`;
    const login = await signUp(server.url, name);
    return { ...(await connect(login.token, login.userId, login.deviceId)), name };
  }

  /** Another connected device of the same user. */
  async function another(of: { name: string }): Promise<Dev> {
    const login = await logIn(server.url, of.name, 'correct horse', 'second');
    return connect(login.token, login.userId, login.deviceId);
  }

  async function keysOf(dev: Dev, userIds: number[]): Promise<{ accounts: any[]; devices: any[] }> {
    const reply = await dev.socket.expect({ type: 'keys_get', user_ids: userIds }, 'keys');
    return { accounts: reply.accounts, devices: reply.devices };
  }

  /** Sends a request that must fail; checks its code and field and that keys_get is the same after it. */
  async function refused(dev: Dev, frame: Record<string, unknown>, code: string, field?: string): Promise<any> {
    const before = await keysOf(dev, [dev.userId]);
    const reply = await dev.socket.expect(frame, 'error');
    assert.equal(reply.error.code, code, JSON.stringify(reply.error));
    if (field !== undefined) assert.equal(reply.error.field, field, JSON.stringify(reply.error));
    assert.deepEqual(await keysOf(dev, [dev.userId]), before, 'a refused request changes nothing stored');
    return reply.error;
  }

  async function direct(a: Dev, b: { name: string }): Promise<number> {
    return (await a.socket.expect({ type: 'direct_open', username: b.name }, 'thread')).thread.id;
  }

  describe('keys_publish', () => {
    it('stores an approved device and tells the owner and everyone sharing a thread (keys_changed, account_changed)', async () => {
      const [alice, bob] = [await user('alice'), await user('bob')];
      await direct(bob, alice);
      const account = new TestAccount(alice.userId);
      const device = await approvedDevice(alice.socket, alice.userId, alice.deviceId, account);
      const accountEvent = await bob.socket.nextEvent('account_changed');
      assert.deepEqual(accountEvent, { type: 'account_changed', ...account.publication(), user_id: alice.userId });
      const keysEvent = await bob.socket.nextEvent('keys_changed');
      assert.deepEqual(keysEvent, { type: 'keys_changed', ...device.entry(account.certify(device)) });
      assert.deepEqual((await alice.socket.nextEvent('keys_changed')).device_id, alice.deviceId, "the owner's own devices hear of it too");
      assert.deepEqual(await keysOf(bob, [alice.userId]), {
        accounts: [{ user_id: alice.userId, ...account.publication() }],
        devices: [device.entry(account.certify(device))],
      });
    });

    it('refuses wrong sizes, non-canonical base64, a weak X25519 key and signatures over other ids, naming the field', async () => {
      const alice = await user('alice');
      const device = new TestDevice(alice.userId, alice.deviceId);
      const good = device.publication();
      const cases: Array<[Record<string, unknown>, string]> = [
        [{ ...good, enc_key: Buffer.alloc(31, 1).toString('base64') }, 'enc_key'],
        [{ ...good, sign_key: Buffer.alloc(33, 1).toString('base64') }, 'sign_key'],
        [{ ...good, signature: Buffer.alloc(63, 1).toString('base64') }, 'signature'],
        [{ ...good, enc_key: String(good.enc_key).replace(/=$/, '') }, 'enc_key'],
        [{ ...good, enc_key: Buffer.alloc(32).toString('base64') }, 'enc_key'],
        [{ ...good, counter: 0 }, 'counter'],
        [{ ...good, counter: 1.5 }, 'counter'],
        [{ ...good, account_signature: Buffer.alloc(10).toString('base64') }, 'account_signature'],
        [device.publication(undefined, { deviceId: alice.deviceId + 1000 }), 'signature'],
        [device.publication(undefined, { userId: alice.userId + 1000 }), 'signature'],
        [{ ...good, counter: 2 }, 'signature'],
      ];
      for (const [frame, field] of cases) await refused(alice, { type: 'keys_publish', ...frame }, 'invalid_field', field);
      assert.deepEqual((await keysOf(alice, [alice.userId])).devices, []);
    });

    it("refuses a change of a device's identity key (key_conflict, sign_key)", async () => {
      const alice = await user('alice');
      const device = new TestDevice(alice.userId, alice.deviceId);
      await alice.socket.expect({ type: 'keys_publish', ...device.publication() }, 'ok');
      const impostor = new TestDevice(alice.userId, alice.deviceId);
      impostor.counter = 5;
      const error = await refused(alice, { type: 'keys_publish', ...impostor.publication() }, 'key_conflict', 'sign_key');
      assert.match(error.message, /identity key cannot change: log in again/);
      assert.equal(error.retryable, false);
    });

    it('refuses an identity key another device already has, of the same user or another', async () => {
      const [alice, bob] = [await user('alice'), await user('bob')];
      const alice2 = await another(alice);
      const device = new TestDevice(alice.userId, alice.deviceId);
      await alice.socket.expect({ type: 'keys_publish', ...device.publication() }, 'ok');
      for (const thief of [alice2, bob]) {
        // The same identity key, honestly signed for the thief's own ids.
        const copy = Object.assign(new TestDevice(thief.userId, thief.deviceId), { signPublic: device.signPublic, signSecret: device.signSecret });
        await refused(thief, { type: 'keys_publish', ...copy.publication() }, 'key_conflict', 'sign_key');
      }
    });

    it('refuses a lower counter (rollback) and an equal counter with another enc_key; the same keys again are a no-op', async () => {
      const [alice, bob] = [await user('alice'), await user('bob')];
      await direct(bob, alice);
      const device = new TestDevice(alice.userId, alice.deviceId);
      await alice.socket.expect({ type: 'keys_publish', ...device.publication() }, 'ok');
      const first = device.publication();
      device.rotate();
      await alice.socket.expect({ type: 'keys_publish', ...device.publication() }, 'ok');
      await bob.socket.nextEvent((f) => f.type === 'keys_changed' && f.counter === 2);
      bob.socket.drain('keys_changed');
      assert.match((await refused(alice, { type: 'keys_publish', ...first }, 'key_conflict', 'counter')).message, /rollback/);
      const sameCounter = Object.assign(new TestDevice(alice.userId, alice.deviceId), { signPublic: device.signPublic, signSecret: device.signSecret, counter: 2 });
      await refused(alice, { type: 'keys_publish', ...sameCounter.publication() }, 'key_conflict', 'counter');
      // The same keys again: no event. The next keys_changed bob sees is the rotation after it.
      await alice.socket.expect({ type: 'keys_publish', ...device.publication() }, 'ok');
      device.rotate();
      await alice.socket.expect({ type: 'keys_publish', ...device.publication() }, 'ok');
      assert.equal((await bob.socket.nextEvent('keys_changed')).counter, 3);
    });

    it('refuses an account signature that does not verify, or one given before the user has an account key', async () => {
      const alice = await user('alice');
      const account = new TestAccount(alice.userId);
      const device = new TestDevice(alice.userId, alice.deviceId);
      assert.match((await refused(alice, { type: 'keys_publish', ...device.publication(account.certify(device)) }, 'invalid_field', 'account_signature')).message, /no account key/);
      await alice.socket.expect({ type: 'account_publish', ...account.publication() }, 'ok');
      const stranger = new TestAccount(alice.userId);
      for (const signature of [stranger.certify(device), account.certify(device, { counter: 2 }), account.certify(device, { deviceId: alice.deviceId + 1 })]) {
        await refused(alice, { type: 'keys_publish', ...device.publication(signature) }, 'invalid_field', 'account_signature');
      }
      // Pending first, then the same keys with a certificate: stored without a new counter.
      await alice.socket.expect({ type: 'keys_publish', ...device.publication() }, 'ok');
      assert.equal((await keysOf(alice, [alice.userId])).devices[0].account_signature, null);
      await alice.socket.expect({ type: 'keys_publish', ...device.publication(account.certify(device)) }, 'ok');
      assert.deepEqual((await keysOf(alice, [alice.userId])).devices, [device.entry(account.certify(device))]);
    });

    it('keeps an approval when the same keys come again without one; a rotation is pending until certified again', async () => {
      const alice = await user('alice');
      const account = new TestAccount(alice.userId);
      const device = await approvedDevice(alice.socket, alice.userId, alice.deviceId, account);
      await alice.socket.expect({ type: 'keys_publish', ...device.publication() }, 'ok');
      assert.deepEqual((await keysOf(alice, [alice.userId])).devices, [device.entry(account.certify(device))]);
      device.rotate();
      await alice.socket.expect({ type: 'keys_publish', ...device.publication() }, 'ok');
      assert.deepEqual((await keysOf(alice, [alice.userId])).devices, [device.entry(null)]);
    });

    it('accepts protocol 2 keys from a device that published protocol 1 keys only with the same identity key', async () => {
      const alice = await user('alice');
      const old = new TestDevice(alice.userId, alice.deviceId);
      // What protocol 1 stored: sign_key's signature of the raw enc_key, no counter.
      const db = new Database(join(data, 'chatd.db'));
      try {
        db.prepare('UPDATE devices SET enc_key = ?, sign_key = ?, key_signature = ? WHERE id = ?').run(old.encKey, old.signKey, 'v1', alice.deviceId);
      } finally {
        db.close();
      }
      assert.deepEqual((await keysOf(alice, [alice.userId])).devices, [], 'protocol 1 keys are not served: nothing can verify them');
      await refused(alice, { type: 'keys_publish', ...new TestDevice(alice.userId, alice.deviceId).publication() }, 'key_conflict', 'sign_key');
      await alice.socket.expect({ type: 'keys_publish', ...old.publication() }, 'ok');
      assert.deepEqual((await keysOf(alice, [alice.userId])).devices, [old.entry(null)]);
    });
  });

  describe('account_publish', () => {
    it('refuses a key or signature of the wrong size and a self-signature over another user id', async () => {
      const alice = await user('alice');
      const account = new TestAccount(alice.userId);
      const good = account.publication();
      await refused(alice, { type: 'account_publish', ...good, account_key: Buffer.alloc(31).toString('base64') }, 'invalid_field', 'account_key');
      await refused(alice, { type: 'account_publish', ...good, signature: Buffer.alloc(32).toString('base64') }, 'invalid_field', 'signature');
      await refused(alice, { type: 'account_publish', ...account.publication(alice.userId + 1) }, 'invalid_field', 'signature');
      assert.deepEqual((await keysOf(alice, [alice.userId])).accounts, []);
    });

    it('stores the first key; the same key again is a no-op; another key without reset is key_conflict', async () => {
      const [alice, bob] = [await user('alice'), await user('bob')];
      await direct(bob, alice);
      const account = new TestAccount(alice.userId);
      await alice.socket.expect({ type: 'account_publish', ...account.publication() }, 'ok');
      await alice.socket.expect({ type: 'account_publish', ...account.publication() }, 'ok');
      const other = new TestAccount(alice.userId);
      await refused(alice, { type: 'account_publish', ...other.publication() }, 'key_conflict', 'account_key');
      await refused(alice, { type: 'account_publish', ...other.publication(), reset: false }, 'key_conflict', 'account_key');
      assert.deepEqual((await keysOf(bob, [alice.userId])).accounts, [{ user_id: alice.userId, ...account.publication() }]);
      assert.equal((await bob.socket.nextEvent('account_changed')).account_key, account.key);
      assert.equal(bob.socket.drain('account_changed').length, 0, 'one event: the no-op and the refusals sent none');
    });

    it('a reset replaces the key, makes every device of the user pending, tells everyone, and is audited', async () => {
      const [alice, bob] = [await user('alice'), await user('bob')];
      const alice2 = await another(alice);
      await direct(bob, alice);
      const account = new TestAccount(alice.userId);
      const d1 = await approvedDevice(alice.socket, alice.userId, alice.deviceId, account);
      const d2 = await approvedDevice(alice2.socket, alice2.userId, alice2.deviceId, account, false);
      const fresh = new TestAccount(alice.userId);
      await alice2.socket.expect({ type: 'account_publish', ...fresh.publication(), reset: true }, 'ok');
      assert.equal((await bob.socket.nextEvent((f) => f.type === 'account_changed' && f.account_key === fresh.key)).user_id, alice.userId);
      await bob.socket.nextEvent((f) => f.type === 'keys_changed' && f.device_id === d1.deviceId && f.account_signature === null);
      await bob.socket.nextEvent((f) => f.type === 'keys_changed' && f.device_id === d2.deviceId && f.account_signature === null);
      assert.deepEqual(await keysOf(bob, [alice.userId]), { accounts: [{ user_id: alice.userId, ...fresh.publication() }], devices: [d1.entry(null), d2.entry(null)] });
      const line = await server.waitForLog((l) => l.audit === 'account_key_reset' && l.user_id === alice.userId);
      assert.deepEqual([line.device_id, [...(line.device_ids as number[])].sort((x, y) => x - y)], [alice2.deviceId, [alice.deviceId, alice2.deviceId]]);
      // The old certificates are worth nothing now; new ones are.
      await refused(alice2, { type: 'device_approve', device_id: d1.deviceId, account_signature: account.certify(d1) }, 'invalid_field', 'account_signature');
      await alice2.socket.expect({ type: 'device_approve', device_id: d1.deviceId, account_signature: fresh.certify(d1) }, 'ok');
    });
    it('a reset needs a device approved under the current key, or the password in the frame (a token alone is not enough)', async () => {
      const [alice, bob] = [await user('alice'), await user('bob')];
      await direct(bob, alice);
      const [thief, bare] = [await another(alice), await another(alice)];
      const account = new TestAccount(alice.userId);
      await approvedDevice(alice.socket, alice.userId, alice.deviceId, account);
      await thief.socket.expect({ type: 'keys_publish', ...new TestDevice(thief.userId, thief.deviceId).publication() }, 'ok');
      const fresh = new TestAccount(alice.userId);
      for (const dev of [thief, bare]) {
        const error = await refused(dev, { type: 'account_publish', ...fresh.publication(), reset: true }, 'forbidden', 'password');
        assert.match(error.message, /needs your password/);
      }
      await refused(thief, { type: 'account_publish', ...fresh.publication(), reset: true, password: 'wrong horse' }, 'invalid_credentials', 'password');
      const failed = await server.waitForLog((l) => l.audit === 'password_confirm_failed' && l.device_id === thief.deviceId);
      assert.equal(failed.user_id, alice.userId);
      assert.deepEqual((await keysOf(bob, [alice.userId])).accounts, [{ user_id: alice.userId, ...account.publication() }], 'bob still sees the old key');
      // The password (the owner who lost every approved device) makes the reset, audited as before.
      await thief.socket.expect({ type: 'account_publish', ...fresh.publication(), reset: true, password: 'correct horse' }, 'ok');
      assert.equal((await bob.socket.nextEvent((f) => f.type === 'account_changed' && f.account_key === fresh.key)).user_id, alice.userId);
      const line = await server.waitForLog((l) => l.audit === 'account_key_reset' && l.user_id === alice.userId);
      assert.equal(line.device_id, thief.deviceId);
      // After the reset nobody is approved: the first device needs the password too.
      await refused(alice, { type: 'account_publish', ...new TestAccount(alice.userId).publication(), reset: true }, 'forbidden', 'password');
    });
  });

  describe('device_approve', () => {
    it('approves a pending device of the same user, which every sharer hears of', async () => {
      const [alice, bob] = [await user('alice'), await user('bob')];
      await direct(bob, alice);
      const alice2 = await another(alice);
      const account = new TestAccount(alice.userId);
      await approvedDevice(alice.socket, alice.userId, alice.deviceId, account);
      const pending = new TestDevice(alice2.userId, alice2.deviceId);
      await alice2.socket.expect({ type: 'keys_publish', ...pending.publication() }, 'ok');
      await bob.socket.nextEvent((f) => f.type === 'keys_changed' && f.device_id === alice2.deviceId && f.account_signature === null);
      await alice.socket.expect({ type: 'device_approve', device_id: alice2.deviceId, account_signature: account.certify(pending) }, 'ok');
      const approved = await bob.socket.nextEvent((f) => f.type === 'keys_changed' && f.device_id === alice2.deviceId && f.account_signature !== null);
      assert.deepEqual(approved, { type: 'keys_changed', ...pending.entry(account.certify(pending)) });
    });

    it("answers not_found for another user's device, a revoked device, an unknown one, and one without keys", async () => {
      const [alice, bob] = [await user('alice'), await user('bob')];
      const [alice2, alice3] = [await another(alice), await another(alice)];
      const account = new TestAccount(alice.userId);
      await approvedDevice(alice.socket, alice.userId, alice.deviceId, account);
      const bobAccount = new TestAccount(bob.userId);
      const bobs = await approvedDevice(bob.socket, bob.userId, bob.deviceId, bobAccount);
      const gone = new TestDevice(alice2.userId, alice2.deviceId);
      await alice2.socket.expect({ type: 'keys_publish', ...gone.publication() }, 'ok');
      assert.equal((await request(`${server.url}/v1/devices/${alice2.deviceId}`, { method: 'DELETE', token: alice.token })).status, 204);
      const cases: Array<[number, string]> = [
        [bob.deviceId, account.certify(bobs)],
        [alice2.deviceId, account.certify(gone)],
        [999_999, account.certify(gone)],
        [alice3.deviceId, account.certify(new TestDevice(alice3.userId, alice3.deviceId))],
      ];
      for (const [deviceId, signature] of cases) await refused(alice, { type: 'device_approve', device_id: deviceId, account_signature: signature }, 'not_found', 'device_id');
      assert.deepEqual((await keysOf(bob, [bob.userId])).devices, [bobs.entry(bobAccount.certify(bobs))], "bob's device is as bob left it");
    });

    it('refuses a signature by another key, over an older counter, or of the wrong size (invalid_field)', async () => {
      const alice = await user('alice');
      const alice2 = await another(alice);
      const account = new TestAccount(alice.userId);
      await approvedDevice(alice.socket, alice.userId, alice.deviceId, account);
      const pending = new TestDevice(alice2.userId, alice2.deviceId);
      const stale = account.certify(pending);
      pending.rotate();
      await alice2.socket.expect({ type: 'keys_publish', ...pending.publication() }, 'ok');
      for (const signature of [new TestAccount(alice.userId).certify(pending), stale, Buffer.alloc(12).toString('base64')]) {
        await refused(alice, { type: 'device_approve', device_id: alice2.deviceId, account_signature: signature }, 'invalid_field', 'account_signature');
      }
      assert.equal((await keysOf(alice, [alice.userId])).devices.find((d) => d.device_id === alice2.deviceId).account_signature, null);
    });
  });

  describe('keys_get', () => {
    it('lists accounts, pending devices (account_signature null) and revoked ones (revoked: true), for users sharing a thread only', async () => {
      const [alice, bob, carol] = [await user('alice'), await user('bob'), await user('carol')];
      const [alice2, alice3] = [await another(alice), await another(alice)];
      await direct(bob, alice);
      const account = new TestAccount(alice.userId);
      const d1 = await approvedDevice(alice.socket, alice.userId, alice.deviceId, account);
      const d2 = new TestDevice(alice2.userId, alice2.deviceId);
      await alice2.socket.expect({ type: 'keys_publish', ...d2.publication() }, 'ok');
      const d3 = await approvedDevice(alice3.socket, alice3.userId, alice3.deviceId, account, false);
      assert.equal((await request(`${server.url}/v1/devices/${alice3.deviceId}`, { method: 'DELETE', token: alice.token })).status, 204);
      const expected = { accounts: [{ user_id: alice.userId, ...account.publication() }], devices: [d1.entry(account.certify(d1)), d2.entry(null), d3.entry(account.certify(d3), true)] };
      assert.deepEqual(await keysOf(bob, [alice.userId]), expected);
      const all = await bob.socket.expect({ type: 'keys_get' }, 'keys');
      assert.deepEqual(all.devices.filter((d: any) => d.user_id === alice.userId), expected.devices);
      assert.deepEqual(await keysOf(carol, [alice.userId]), { accounts: [], devices: [] }, 'carol shares no thread with alice');
    });

    it('still serves the keys of a former member (either side left) and tells them of changes: old messages must verify', async () => {
      const [alice, bob, carol] = [await user('alice'), await user('bob'), await user('carol')];
      const group: number = (await alice.socket.expect({ type: 'group_create', title: 'g', members: [bob.userId] }, 'thread')).thread.id;
      const account = new TestAccount(bob.userId);
      const b = await approvedDevice(bob.socket, bob.userId, bob.deviceId, account);
      await bob.socket.expect({ type: 'group_leave', thread_id: group }, 'ok');
      assert.deepEqual(await keysOf(alice, [bob.userId]), { accounts: [{ user_id: bob.userId, ...account.publication() }], devices: [b.entry(account.certify(b))] });
      assert.ok((await alice.socket.expect({ type: 'keys_get' }, 'keys')).devices.some((d: any) => d.device_id === bob.deviceId));
      assert.equal((await keysOf(bob, [alice.userId])).devices.length, 0, 'alice has no keys yet; bob may ask');
      const a = await approvedDevice(alice.socket, alice.userId, alice.deviceId, new TestAccount(alice.userId));
      assert.deepEqual((await keysOf(bob, [alice.userId])).devices.map((d: any) => d.device_id), [a.deviceId], 'the one who left still sees the one who stayed');
      b.rotate();
      await bob.socket.expect({ type: 'keys_publish', ...b.publication() }, 'ok');
      assert.equal((await alice.socket.nextEvent((f) => f.type === 'keys_changed' && f.device_id === bob.deviceId && f.counter === 2)).user_id, bob.userId);
      assert.deepEqual(await keysOf(carol, [bob.userId]), { accounts: [], devices: [] }, 'carol never shared a thread with bob');
    });

    it('announces a revoked device with revoked: true', async () => {
      const [alice, bob] = [await user('alice'), await user('bob')];
      const alice2 = await another(alice);
      await direct(bob, alice);
      const account = new TestAccount(alice.userId);
      await approvedDevice(alice.socket, alice.userId, alice.deviceId, account);
      const d2 = await approvedDevice(alice2.socket, alice2.userId, alice2.deviceId, account, false);
      assert.equal((await request(`${server.url}/v1/devices/${alice2.deviceId}`, { method: 'DELETE', token: alice.token })).status, 204);
      const event = await bob.socket.nextEvent((f) => f.type === 'keys_changed' && f.device_id === alice2.deviceId && f.revoked === true);
      assert.deepEqual(event, { type: 'keys_changed', ...d2.entry(account.certify(d2), true) });
    });
  });

  describe('revocation by the admin CLI (another process)', () => {
    it("announces the device as revoked and drops the messages waiting for it", async () => {
      const [alice, bob] = [await user('alice'), await user('bob')];
      const alice2 = await another(alice);
      await direct(bob, alice);
      const account = new TestAccount(alice.userId);
      await approvedDevice(alice.socket, alice.userId, alice.deviceId, account);
      const d2 = await approvedDevice(alice2.socket, alice2.userId, alice2.deviceId, account, false);
      await alice.socket.expect({ type: 'device_send', device_id: alice2.deviceId, payload: 'AAEC' }, 'ok');
      const revoked = await runCli(['device', 'revoke', String(alice2.deviceId), '--data', data, '--config', configFile]);
      assert.equal(revoked.code, 0, revoked.stderr);
      const event = await bob.socket.nextEvent((f) => f.type === 'keys_changed' && f.device_id === alice2.deviceId && f.revoked === true);
      assert.deepEqual(event, { type: 'keys_changed', ...d2.entry(account.certify(d2), true) });
      const db = new Database(join(data, 'chatd.db'), { readonly: true });
      try {
        assert.equal((db.prepare('SELECT count(*) AS n FROM device_messages WHERE to_device = ?').get(alice2.deviceId) as { n: number }).n, 0);
      } finally {
        db.close();
      }
    });
  });

  describe('e2e messages', () => {
    it('need a sealed key for every approved device and none for pending ones; a pending device cannot send', async () => {
      const [alice, bob] = [await user('alice'), await user('bob')];
      const bob2 = await another(bob);
      const thread = await direct(alice, bob);
      const a = await approvedDevice(alice.socket, alice.userId, alice.deviceId, new TestAccount(alice.userId));
      const b = await approvedDevice(bob.socket, bob.userId, bob.deviceId, new TestAccount(bob.userId));
      const pending = new TestDevice(bob2.userId, bob2.deviceId);
      await bob2.socket.expect({ type: 'keys_publish', ...pending.publication() }, 'ok');
      const send = (dev: Dev, cmid: string, body: unknown) => dev.socket.request({ type: 'send', thread_id: thread, client_msg_id: cmid, kind: 'e2e', body });
      const withPending = await send(alice, 'm1', envelope(a.deviceId, [a.deviceId, b.deviceId, pending.deviceId]));
      assert.deepEqual([withPending.error.code, withPending.error.extra_devices, withPending.error.missing_devices], ['devices_changed', [pending.deviceId], []]);
      const withoutBob = await send(alice, 'm2', envelope(a.deviceId, [a.deviceId]));
      assert.deepEqual([withoutBob.error.code, withoutBob.error.missing_devices], ['devices_changed', [b.deviceId]]);
      assert.equal((await send(alice, 'm3', envelope(a.deviceId, [a.deviceId, b.deviceId]))).type, 'ack');
      const fromPending = await send(bob2, 'm4', envelope(pending.deviceId, [a.deviceId, b.deviceId, pending.deviceId]));
      assert.deepEqual([fromPending.error.code, fromPending.error.field], ['invalid_field', 'body']);
      assert.match(fromPending.error.message, /no approved keys/);
      const history = await alice.socket.expect({ type: 'history', thread_id: thread }, 'messages');
      assert.deepEqual(history.messages.filter((m: any) => m.kind === 'e2e').map((m: any) => m.client_msg_id), ['m3'], 'only the accepted one is stored');
    });

    it('refuses a protocol 1 envelope with the update message, and envelopes without a 32-byte commit', async () => {
      const [alice, bob] = [await user('alice'), await user('bob')];
      const thread = await direct(alice, bob);
      const a = await approvedDevice(alice.socket, alice.userId, alice.deviceId, new TestAccount(alice.userId));
      const ids = [a.deviceId];
      const { commit: _commit, ...v1 } = { ...envelope(a.deviceId, ids), v: 1 } as Record<string, unknown>;
      const { commit: _gone, ...noCommit } = envelope(a.deviceId, ids);
      const cases: Array<[unknown, RegExp]> = [
        [v1, /v must be 2 \(this server speaks protocol 2: update the client\)/],
        [{ ...envelope(a.deviceId, ids), v: 1 }, /v must be 2/],
        [noCommit, /commit must be standard, padded base64/],
        [{ ...envelope(a.deviceId, ids), commit: Buffer.alloc(16).toString('base64') }, /commit must be 32 bytes/],
        [{ ...envelope(a.deviceId, ids), extra: 'x' }, /not extra/],
      ];
      for (const [body, message] of cases) {
        const reply = await alice.socket.expect({ type: 'send', thread_id: thread, client_msg_id: 'x', kind: 'e2e', body }, 'error');
        assert.deepEqual([reply.error.code, reply.error.field], ['invalid_field', 'body']);
        assert.match(reply.error.message, message);
      }
      const history = await alice.socket.expect({ type: 'history', thread_id: thread }, 'messages');
      assert.equal(history.messages.filter((m: any) => m.kind === 'e2e').length, 0);
    });

    it('refuses every envelope field not in canonical base64 (unpadded, non-zero trailing bits, URL alphabet) and a ciphertext shorter than its tag', async () => {
      const [alice, bob] = [await user('alice'), await user('bob')];
      const thread = await direct(alice, bob);
      const a = await approvedDevice(alice.socket, alice.userId, alice.deviceId, new TestAccount(alice.userId));
      const b = await approvedDevice(bob.socket, bob.userId, bob.deviceId, new TestAccount(bob.userId));
      const good = envelope(a.deviceId, [a.deviceId, b.deviceId]);
      const keys = good.keys as Record<string, string>;
      const sealed = keys[String(b.deviceId)]!;
      // 80 bytes: base64 ends in one "=" after a character carrying 2 bits of the last byte and 4 zero bits.
      const trailingBits = sealed.slice(0, -2) + String.fromCharCode(sealed.charCodeAt(sealed.length - 2) ^ 1) + '=';
      const variants: Array<[string, Record<string, unknown>]> = [
        ['nonce url alphabet', { ...good, nonce: Buffer.alloc(24, 0xfb).toString('base64url') }],
        ['commit unpadded', { ...good, commit: String(good.commit).replace(/=$/, '') }],
        ['signature unpadded', { ...good, signature: String(good.signature).replace(/==$/, '') }],
        ['ciphertext of 1 byte', { ...good, ciphertext: 'AB==' }],
        ['ciphertext url alphabet', { ...good, ciphertext: Buffer.alloc(48, 0xfb).toString('base64url') }],
        ['key unpadded', { ...good, keys: { ...keys, [String(b.deviceId)]: sealed.replace(/=$/, '') } }],
        ['key trailing bits', { ...good, keys: { ...keys, [String(b.deviceId)]: trailingBits } }],
      ];
      for (const [name, body] of variants) {
        const reply = await alice.socket.expect({ type: 'send', thread_id: thread, client_msg_id: name, kind: 'e2e', body }, 'error');
        assert.deepEqual([reply.error.code, reply.error.field], ['invalid_field', 'body'], name);
      }
      await alice.socket.expect({ type: 'send', thread_id: thread, client_msg_id: 'good', kind: 'e2e', body: good }, 'ack');
      const history = await alice.socket.expect({ type: 'history', thread_id: thread }, 'messages');
      assert.deepEqual(history.messages.filter((m: any) => m.kind === 'e2e').map((m: any) => m.client_msg_id), ['good']);
    });

    it('passes a v2 envelope built to the spec unchanged: the receiver opens it and checks its commitment', async () => {
      const [alice, bob] = [await user('alice'), await user('bob')];
      const thread = await direct(alice, bob);
      const a = await approvedDevice(alice.socket, alice.userId, alice.deviceId, new TestAccount(alice.userId));
      const b = await approvedDevice(bob.socket, bob.userId, bob.deviceId, new TestAccount(bob.userId));
      const context = { threadId: thread, clientMsgId: 'sealed-1', senderUserId: alice.userId };
      const body = sealEnvelope(a, context, { text: 'only for bob' }, [a, b]);
      await alice.socket.expect({ type: 'send', thread_id: thread, client_msg_id: 'sealed-1', kind: 'e2e', body }, 'ack');
      const event = await bob.socket.nextEvent((f) => f.type === 'message' && f.message.client_msg_id === 'sealed-1');
      assert.deepEqual(event.message.body, body);
      assert.deepEqual(openEnvelope(b, event.message.body, context, a.signKey), { text: 'only for bob' });
      assert.throws(() => openEnvelope(b, { ...event.message.body, commit: Buffer.alloc(32).toString('base64') }, context, a.signKey), /signature/);
    });
  });

  describe('device messages', () => {
    const payload = (bytes: number, fill = 7): string => Buffer.alloc(bytes, fill).toString('base64');
    /** Only approved devices send: the user's account key, and each given device certified by it. */
    const approve = async (...devs: Dev[]): Promise<TestAccount> => {
      const account = new TestAccount(devs[0]!.userId);
      for (const [i, dev] of devs.entries()) await approvedDevice(dev.socket, dev.userId, dev.deviceId, account, i === 0);
      return account;
    };

    it('reach the other device live and by device_messages, in pages, until acknowledged', async () => {
      const alice = await user('alice');
      const alice2 = await another(alice);
      await approve(alice);
      const sent: number[] = [];
      for (let i = 1; i <= 5; i++) {
        await alice.socket.expect({ type: 'device_send', device_id: alice2.deviceId, payload: payload(10 * i, i) }, 'ok');
        const live = await alice2.socket.nextEvent('device_message');
        assert.deepEqual([live.message.from_device, live.message.payload], [alice.deviceId, payload(10 * i, i)]);
        assert.equal(typeof live.message.created_at, 'number');
        sent.push(live.message.id);
      }
      const first = await alice2.socket.expect({ type: 'device_messages', after: 0, limit: 2 }, 'device_messages');
      assert.deepEqual([first.messages.map((m: any) => m.id), first.more], [sent.slice(0, 2), true]);
      assert.deepEqual(first.messages[0], { id: sent[0], from_device: alice.deviceId, payload: payload(10, 1), created_at: first.messages[0].created_at });
      const rest = await alice2.socket.expect({ type: 'device_messages', after: sent[1], limit: 100 }, 'device_messages');
      assert.deepEqual([rest.messages.map((m: any) => m.id), rest.more], [sent.slice(2), false]);
      await alice2.socket.expect({ type: 'device_messages_ack', up_to: sent[2] }, 'ok');
      const left = await alice2.socket.expect({ type: 'device_messages' }, 'device_messages');
      assert.deepEqual(left.messages.map((m: any) => m.id), sent.slice(3));
      const none = await alice.socket.expect({ type: 'device_messages' }, 'device_messages');
      assert.deepEqual([none.messages, none.more], [[], false], 'the sender got nothing');
    });

    it("go to the user's own other current devices only", async () => {
      const [alice, bob] = [await user('alice'), await user('bob')];
      const [alice2, alice3] = [await another(alice), await another(alice)];
      await approve(alice);
      assert.equal((await request(`${server.url}/v1/devices/${alice3.deviceId}`, { method: 'DELETE', token: alice.token })).status, 204);
      for (const target of [bob.deviceId, alice.deviceId, alice3.deviceId, 999_999]) {
        const reply = await alice.socket.expect({ type: 'device_send', device_id: target, payload: payload(8) }, 'error');
        assert.deepEqual([reply.error.code, reply.error.field], ['not_found', 'device_id']);
      }
      for (const dev of [bob, alice2]) assert.deepEqual((await dev.socket.expect({ type: 'device_messages' }, 'device_messages')).messages, []);
    });

    it('refuse a payload over e2e.max_device_message_bytes or not in base64, and storing nothing', async () => {
      const alice = await user('alice');
      const alice2 = await another(alice);
      await approve(alice);
      const big = await alice.socket.expect({ type: 'device_send', device_id: alice2.deviceId, payload: payload(MAX_MESSAGE + 1) }, 'error');
      assert.deepEqual([big.error.code, big.error.field], ['payload_too_large', 'payload']);
      assert.match(big.error.message, /e2e\.max_device_message_bytes/);
      for (const bad of ['not base64!', 'QQ', 'QR==']) {
        const reply = await alice.socket.expect({ type: 'device_send', device_id: alice2.deviceId, payload: bad }, 'error');
        assert.deepEqual([reply.error.code, reply.error.field], ['invalid_field', 'payload']);
      }
      await alice.socket.expect({ type: 'device_send', device_id: alice2.deviceId, payload: payload(MAX_MESSAGE) }, 'ok');
      const stored = await alice2.socket.expect({ type: 'device_messages' }, 'device_messages');
      assert.deepEqual(stored.messages.map((m: any) => Buffer.from(m.payload, 'base64').length), [MAX_MESSAGE]);
    });

    it("refuse a message that would overfill the sender's queue at the target: rate_limited, limit e2e.max_device_queue_bytes, no retry_after, until the receiver acknowledges", async () => {
      const alice = await user('alice');
      const [alice2, alice3] = [await another(alice), await another(alice)];
      await approve(alice, alice3);
      for (let i = 0; i < MAX_QUEUE / MAX_MESSAGE; i++) {
        await alice.socket.expect({ type: 'device_send', device_id: alice2.deviceId, payload: payload(MAX_MESSAGE) }, 'ok');
      }
      const full = await alice.socket.expect({ type: 'device_send', device_id: alice2.deviceId, payload: payload(1) }, 'error');
      assert.deepEqual([full.error.code, full.error.limit, full.error.retryable], ['rate_limited', 'e2e.max_device_queue_bytes', true]);
      // A retry_after would pause every request on the sender's connection (the SDK's pacer).
      assert.equal(full.error.retry_after_ms, undefined);
      // Another sender has a queue of its own there: alice's full one does not block it.
      await alice3.socket.expect({ type: 'device_send', device_id: alice2.deviceId, payload: payload(1) }, 'ok');
      await alice2.socket.nextEvent((f) => f.type === 'device_message' && f.message.from_device === alice3.deviceId);
      let count = 0;
      let after = 0;
      for (;;) {
        const page = await alice2.socket.expect({ type: 'device_messages', after }, 'device_messages');
        count += page.messages.length;
        after = page.messages.at(-1)?.id ?? after;
        if (!page.more) break;
      }
      assert.equal(count, MAX_QUEUE / MAX_MESSAGE + 1, "the refused one was not stored (alice3's one is there)");
      await alice2.socket.expect({ type: 'device_messages_ack', up_to: after }, 'ok');
      await alice.socket.expect({ type: 'device_send', device_id: alice2.deviceId, payload: payload(1) }, 'ok');
    });

    it('come only from an approved device: a pending one, or one without keys, is forbidden and stores nothing', async () => {
      const alice = await user('alice');
      const alice2 = await another(alice);
      const account = await approve(alice);
      const refusedSend = async (): Promise<void> => {
        const reply = await alice2.socket.expect({ type: 'device_send', device_id: alice.deviceId, payload: payload(8) }, 'error');
        assert.equal(reply.error.code, 'forbidden', JSON.stringify(reply.error));
      };
      await refusedSend();
      const pending = new TestDevice(alice2.userId, alice2.deviceId);
      await alice2.socket.expect({ type: 'keys_publish', ...pending.publication() }, 'ok');
      await refusedSend();
      assert.deepEqual((await alice.socket.expect({ type: 'device_messages' }, 'device_messages')).messages, []);
      await alice.socket.expect({ type: 'device_approve', device_id: alice2.deviceId, account_signature: account.certify(pending) }, 'ok');
      await alice2.socket.expect({ type: 'device_send', device_id: alice.deviceId, payload: payload(8) }, 'ok');
    });

    it("are deleted with their device's revocation", async () => {
      const alice = await user('alice');
      const alice2 = await another(alice);
      await approve(alice, alice2);
      await alice.socket.expect({ type: 'device_send', device_id: alice2.deviceId, payload: payload(16) }, 'ok');
      await alice2.socket.expect({ type: 'device_send', device_id: alice.deviceId, payload: payload(16) }, 'ok');
      assert.equal((await request(`${server.url}/v1/devices/${alice2.deviceId}`, { method: 'DELETE', token: alice.token })).status, 204);
      const db = new Database(join(data, 'chatd.db'), { readonly: true });
      try {
        const count = (device: number): number => (db.prepare('SELECT count(*) AS n FROM device_messages WHERE to_device = ?').get(device) as { n: number }).n;
        assert.equal(count(alice2.deviceId), 0, "the revoked device's queue is gone");
        assert.equal(count(alice.deviceId), 1, 'what it sent before stays');
      } finally {
        db.close();
      }
    });
  });

  it('signs exactly the documented bytes', () => {
    // A guard on the helper itself: the spec's byte strings, spelled out.
    const bytes = deviceBytes('chatd-device-v2', { userId: 9, deviceId: 14, encKey: 'E=', signKey: 'S=', counter: 2 });
    assert.equal(Buffer.from(bytes).toString('utf8'), '["chatd-device-v2",9,14,"E=","S=",2]');
  });
});
