import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { certifyDevice } from '../../src/client/device-keys.js';
import { AccountApi, ChatClient, type ClientMessage, FileStore, MemoryStore } from '../../src/client/node.js';
import { loadSodium as loadClientSodium } from '../../src/client/sodium.js';
import { TestAccount, TestDevice, approvedDevice, envelope, loadSodium, sealEnvelope } from '../helpers/e2e.js';
import { ClientEvents } from '../helpers/client-events.js';
import { request } from '../helpers/http.js';
import { type ServerProcess, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { type Connected, connectAuthenticated } from '../helpers/ws.js';

/**
 * End-to-end encryption through the SDK (libsodium) over the real server: what
 * every device reads, what the server holds (nothing readable), and what the
 * receivers make of stale, forged and too-late messages. The server's own
 * rules for protocol 2 are in e2e-server.test.ts.
 */

/**
 * Keys for a raw device of a user whose account key an SDK device holds (read
 * from that device's store): certified, as an approval by that device would.
 */
async function certifiedRawKeys(raw: Connected, accountHolder: MemoryStore): Promise<{ device: TestDevice; keys: Record<string, unknown> }> {
  const secret = (await accountHolder.load()).e2e.account?.account_secret;
  assert.ok(secret, 'the SDK device holds the account key');
  const device = new TestDevice(raw.welcome.user.id, raw.welcome.device_id);
  const statement = { user_id: device.userId, device_id: device.deviceId, enc_key: device.encKey, sign_key: device.signKey, counter: device.counter };
  return { device, keys: device.publication(certifyDevice(await loadClientSodium(), statement, secret)) };
}

/** Every message a client hands the app, waited on by event. */
class Inbox extends ClientEvents {
  /** The next e2e message of the thread after seq `after`. */
  encryptedAfter(threadId: number, after: number): Promise<ClientMessage> {
    return this.until(() => this.messages.find((m) => m.thread_id === threadId && m.kind === 'e2e' && m.seq > after), `an e2e message after seq ${after}`);
  }
}

describe('end-to-end encryption', { timeout: 120_000 }, () => {
  let server: ServerProcess;
  let data: string;
  const clients: ChatClient[] = [];
  let names = 0;

  before(async () => {
    await loadSodium();
    const dir = tempDir();
    data = join(dir, 'data');
    server = await startServer(['--data', data, '--config', writeConfig(dir, '[accounts]\nregistration = "open"\n[rate_limit]\nlogin_per_address = 100000\n')]);
  });
  after(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await server.stop();
  });

  async function user(prefix: string): Promise<string> {
    const name = `${prefix}${++names}`;
    await new AccountApi(server.url).register({ username: name, password: 'correct horse' });
    return name;
  }

  type Device = Inbox & { token: string; deviceId: number };

  /** A logged-in, encrypting device, online, its standing in the account settled. */
  async function device(username: string, options: { store?: FileStore | MemoryStore; token?: string; deviceId?: number } = {}): Promise<Device> {
    const login = options.token ? undefined : await new AccountApi(server.url).login({ username, password: 'correct horse', device_name: 'e2e test', platform: 'bot' });
    const token = options.token ?? login!.token;
    const client = new ChatClient({ server: server.url, token, encryption: true, reconnect: { initialDelayMs: 50, maxDelayMs: 400 }, ...(options.store ? { store: options.store } : {}) });
    clients.push(client);
    const inbox = new Inbox(client);
    await client.start();
    await client.whenOnline();
    await inbox.until(() => inbox.standings[0]);
    return Object.assign(inbox, { token, deviceId: options.deviceId ?? login!.device.id });
  }

  /** Another device of `approver`'s user, approved by it (the user compared the fingerprint the new device shows). */
  async function secondDevice(username: string, approver: Device): Promise<Device> {
    const added = await device(username);
    assert.deepEqual(added.standings, ['pending']);
    await approver.until(() => approver.requests.find((id) => id === added.deviceId));
    await approver.client.approveDevice(added.deviceId, { fingerprint: added.client.ownFingerprint() });
    await added.until(() => added.standings.find((state) => state === 'approved'));
    return added;
  }

  it('two users with two devices each: every device decrypts, in a direct thread and in a group', async () => {
    const [alice, bob, carol] = [await user('alice'), await user('bob'), await user('carol')];
    const [a1, b1, c1] = [await device(alice), await device(bob), await device(carol)];
    const [a2, b2] = [await secondDevice(alice, a1), await secondDevice(bob, b1)];
    assert.deepEqual([a1.standings, b1.standings], [['created'], ['created']]);
    const direct = await a1.client.openDirect(bob);
    await a1.client.send(direct.id, { text: 'hello bob, only you can read this' }, { encrypted: true });
    await b2.client.send(direct.id, { text: 'and only you this' }, { encrypted: true });
    for (const d of [a1, a2, b1, b2]) {
      for (const text of ['hello bob, only you can read this', 'and only you this']) {
        const message = await d.text(direct.id, text);
        assert.equal(message.kind, 'e2e');
        assert.equal(message.e2e?.status, 'ok');
      }
    }
    const group = await c1.client.createGroup('secret club', [alice, bob], { e2eRequired: true });
    // The thread requires encryption: the SDK encrypts without being asked.
    await c1.client.send(group.id, { text: 'first rule of the club' });
    for (const d of [a1, a2, b1, b2, c1]) assert.equal((await d.text(group.id, 'first rule of the club')).e2e?.status, 'ok');
    const [other] = await b1.client.fingerprints(b1.client.user!.id);
    assert.deepEqual([other?.device_id, other?.trusted, other?.mismatch], [b2.deviceId, true, false]);
    assert.equal(other?.fingerprint, b2.client.ownFingerprint());
    // One safety number per pair of users, the same on both sides; the QR code verifies.
    const [fromAlice, fromBob] = [await a1.client.safetyNumber(b1.client.user!.id), await b2.client.safetyNumber(a1.client.user!.id)];
    assert.equal(fromAlice.number, fromBob.number);
    assert.equal(await a2.client.verifyQr(b1.client.user!.id, fromBob.qr), true);
    assert.equal((await a2.client.safetyNumber(b1.client.user!.id)).verified, true);
  });

  it('the database file and the server log hold none of the plaintext', async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const [a1, b1] = [await device(alice), await device(bob)];
    const thread = await a1.client.openDirect(bob);
    const secret = 'zebra-crossing-4711 meets the blue heron';
    await a1.client.send(thread.id, { text: secret }, { encrypted: true });
    assert.equal((await b1.text(thread.id, secret)).e2e?.status, 'ok');
    const needle = Buffer.from('zebra-crossing-4711');
    for (const file of readdirSync(data).filter((name) => name.startsWith('chatd.db'))) {
      assert.equal(readFileSync(join(data, file)).indexOf(needle), -1, `${file} holds the plaintext`);
    }
    assert.doesNotMatch(JSON.stringify(server.logs), /zebra-crossing/);
  });

  it('a sender with a stale device list is refused with the missing and extra devices, and the SDK retries', async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const aliceStore = new MemoryStore();
    const [a1, b1] = [await device(alice, { store: aliceStore }), await device(bob)];
    const b2 = await secondDevice(bob, b1);
    const thread = await a1.client.openDirect(bob);
    await a1.client.send(thread.id, { text: 'before' }, { encrypted: true });
    await b1.text(thread.id, 'before');
    // b2 logs out: no event tells a1, whose list of the thread's devices still has b2.
    assert.equal((await request(`${server.url}/v1/devices/${b2.deviceId}`, { method: 'DELETE', token: b1.token })).status, 204);
    await a1.client.send(thread.id, { text: 'after the logout' }, { encrypted: true });
    assert.equal((await b1.text(thread.id, 'after the logout')).e2e?.status, 'ok');
    // The same refusal, seen on the wire: a raw device of alice with keys, sealing to the wrong devices.
    const raw = await connectAuthenticated(server.wsUrl, (await new AccountApi(server.url).login({ username: alice, password: 'correct horse', device_name: 'raw', platform: 'bot' })).token);
    await raw.socket.expect({ type: 'keys_publish', ...(await certifiedRawKeys(raw, aliceStore)).keys }, 'ok');
    const rawId = raw.welcome.device_id as number;
    const refused = await raw.socket.expect({ type: 'send', thread_id: thread.id, client_msg_id: 'stale-1', kind: 'e2e', body: envelope(rawId, [rawId, b2.deviceId]) }, 'error');
    assert.equal(refused.error.code, 'devices_changed');
    assert.deepEqual(refused.error.extra_devices, [b2.deviceId]);
    assert.deepEqual([...refused.error.missing_devices].sort((x: number, y: number) => x - y), [a1.deviceId, b1.deviceId]);
    raw.socket.close();
  });

  it('a forged signature is detected by the receiver', async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const aliceStore = new MemoryStore();
    const [a1, b1] = [await device(alice, { store: aliceStore }), await device(bob)];
    const thread = await a1.client.openDirect(bob);
    await a1.client.send(thread.id, { text: 'a real one' }, { encrypted: true });
    const real = await b1.text(thread.id, 'a real one');
    // A device of alice's that signs nothing properly (its envelope has random bytes for a signature).
    const raw = await connectAuthenticated(server.wsUrl, (await new AccountApi(server.url).login({ username: alice, password: 'correct horse', device_name: 'forger', platform: 'bot' })).token);
    await raw.socket.expect({ type: 'keys_publish', ...(await certifiedRawKeys(raw, aliceStore)).keys }, 'ok');
    const { devices } = await raw.socket.expect({ type: 'keys_get', user_ids: [(a1.client.user!).id, (b1.client.user!).id] }, 'keys');
    const rawId = raw.welcome.device_id as number;
    const approved = devices.filter((d: { account_signature: string | null; revoked: boolean }) => d.account_signature !== null && !d.revoked);
    await raw.socket.expect({ type: 'send', thread_id: thread.id, client_msg_id: 'forged-1', kind: 'e2e', body: envelope(rawId, approved.map((d: { device_id: number }) => d.device_id)) }, 'ack');
    const forged = await b1.encryptedAfter(thread.id, real.seq);
    assert.equal(forged.e2e?.status, 'bad_signature');
    raw.socket.close();
  });

  it('a key rotation reaches the peers; history from before it still opens on both sides', async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const [a1, b1] = [await device(alice), await device(bob)];
    const thread = await a1.client.openDirect(bob);
    await b1.client.send(thread.id, { text: 'old keys' }, { encrypted: true });
    await a1.client.send(thread.id, { text: 'sealed to the old key' }, { encrypted: true });
    const before = (await a1.text(thread.id, 'old keys')).e2e?.fingerprint;
    await b1.text(thread.id, 'sealed to the old key');
    const fingerprint = await b1.client.rotateKeys();
    const change = await a1.until(() => a1.keys.find((c) => c.device_id === b1.deviceId && c.reason === 'rotated'));
    assert.equal(fingerprint, before, 'the identity (signing key) stays: the fingerprint does not change');
    assert.deepEqual([change.fingerprint, change.previous_fingerprint, change.trusted], [before, before, true]);
    await b1.client.send(thread.id, { text: 'new keys' }, { encrypted: true });
    await a1.client.send(thread.id, { text: 'sealed to the new key' }, { encrypted: true });
    assert.deepEqual([(await a1.text(thread.id, 'new keys')).e2e?.status, (await b1.text(thread.id, 'sealed to the new key')).e2e?.status], ['ok', 'ok']);
    for (const d of [a1, b1]) {
      const page = await d.client.history(thread.id);
      assert.deepEqual(
        page.messages.filter((m) => m.kind === 'e2e').map((m) => [(m.body as { text?: string }).text, m.e2e?.status]),
        [['old keys', 'ok'], ['sealed to the old key', 'ok'], ['new keys', 'ok'], ['sealed to the new key', 'ok']],
      );
    }
  });

  it('a device its owner did not approve gets nothing sealed; its owner is asked about it', async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const [a1, b1] = [await device(alice), await device(bob)];
    const thread = await a1.client.openDirect(bob);
    // A device of bob's that publishes keys but never gets the account key's certificate (what a ghost device is).
    const bobLogin = await new AccountApi(server.url).login({ username: bob, password: 'correct horse', device_name: 'ghost', platform: 'bot' });
    const raw = await connectAuthenticated(server.wsUrl, bobLogin.token);
    const ghost = new TestDevice(bobLogin.user.id, bobLogin.device.id);
    await raw.socket.expect({ type: 'keys_publish', ...ghost.publication() }, 'ok');
    await b1.until(() => b1.requests.find((id) => id === bobLogin.device.id));
    await a1.client.send(thread.id, { text: 'not for the ghost' }, { encrypted: true });
    const event = await raw.socket.nextEvent((frame) => frame.type === 'message' && frame.message.client_msg_id !== undefined && frame.message.kind === 'e2e');
    assert.deepEqual(Object.keys(event.message.body.keys).map(Number).sort((x, y) => x - y), [a1.deviceId, b1.deviceId]);
    assert.equal(a1.keys.some((change) => change.device_id === bobLogin.device.id), false, 'a pending device of someone else is no news');
    raw.socket.close();
  });

  it('a new device is pending until approved by the first: nothing is sealed to it before, new messages after', async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const [a1, b1] = [await device(alice), await device(bob)];
    const thread = await a1.client.openDirect(bob);
    await a1.client.send(thread.id, { text: 'before your new phone' }, { encrypted: true });
    const late = await device(bob);
    assert.deepEqual(late.standings, ['pending']);
    assert.deepEqual((await b1.client.devices()).map((d) => [d.device_id, d.state]), [[b1.deviceId, 'this'], [late.deviceId, 'pending']]);
    await a1.client.send(thread.id, { text: 'while it waits' }, { encrypted: true });
    const waiting = await late.until(() => late.messages.find((m) => m.kind === 'e2e' && m.seq > 1));
    assert.equal(waiting.e2e?.status, 'undecryptable', 'not sealed to a pending device');
    await b1.until(() => b1.requests.find((id) => id === late.deviceId));
    await b1.client.approveDevice(late.deviceId, { fingerprint: late.client.ownFingerprint() });
    await late.until(() => late.standings.find((state) => state === 'approved'));
    const page = await late.client.history(thread.id);
    const old = page.messages.find((m) => m.kind === 'e2e');
    assert.equal(old?.e2e?.status, 'undecryptable');
    assert.equal((old?.body as { text?: string }).text, undefined, 'the envelope, not a guess');
    await a1.until(() => a1.keys.find((change) => change.device_id === late.deviceId && change.reason === 'new' && change.trusted));
    await a1.client.send(thread.id, { text: 'welcome, new phone' }, { encrypted: true });
    assert.equal((await late.text(thread.id, 'welcome, new phone')).e2e?.status, 'ok');
  });

  it('a rejected device is revoked: listed as such, and its client stops', async () => {
    const alice = await user('alice');
    const a1 = await device(alice);
    const unwanted = await device(alice);
    await a1.until(() => a1.requests.find((id) => id === unwanted.deviceId));
    const stopped = unwanted.client.once('state', (change) => change.state === 'stopped');
    await a1.client.rejectDevice(unwanted.deviceId);
    assert.equal((await stopped).reason, 'device_revoked');
    assert.deepEqual((await a1.client.devices()).map((d) => [d.device_id, d.state]), [[a1.deviceId, 'this'], [unwanted.deviceId, 'revoked']]);
    await assert.rejects(a1.client.rejectDevice(a1.deviceId), (error: Error & { code?: string }) => error.code === 'invalid_field');
  });

  it('a restart on a FileStore keeps the identity: peers get no key event and the device\'s own history reads ok', async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const path = join(tempDir(), 'alice.json');
    const a1 = await device(alice, { store: new FileStore(path) });
    const b1 = await device(bob);
    const thread = await a1.client.openDirect(bob);
    await a1.client.send(thread.id, { text: 'sent before the restart' }, { encrypted: true });
    await b1.client.send(thread.id, { text: 'received before the restart' }, { encrypted: true });
    await a1.text(thread.id, 'received before the restart');
    await b1.text(thread.id, 'sent before the restart');
    const seenBefore = b1.keys.length;
    await a1.client.close();
    const again = await device(alice, { store: new FileStore(path), token: a1.token, deviceId: a1.deviceId });
    assert.deepEqual(again.standings, ['approved']);
    await again.client.send(thread.id, { text: 'after the restart' }, { encrypted: true });
    assert.equal((await b1.text(thread.id, 'after the restart')).e2e?.status, 'ok');
    assert.equal(b1.keys.length, seenBefore, 'no key event at the peer');
    const page = await again.client.history(thread.id);
    assert.deepEqual(
      page.messages.filter((m) => m.kind === 'e2e').map((m) => [(m.body as { text?: string }).text, m.e2e?.status]),
      [['sent before the restart', 'ok'], ['received before the restart', 'ok'], ['after the restart', 'ok']],
    );
  });

  it('the SDK opens an envelope made from the spec by an independent implementation, and refuses plaintext in a thread it saw encrypted', async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const b1 = await device(bob);
    const login = await new AccountApi(server.url).login({ username: alice, password: 'correct horse', device_name: 'raw', platform: 'bot' });
    const raw = await connectAuthenticated(server.wsUrl, login.token);
    const sender = await approvedDevice(raw.socket, login.user.id, login.device.id, new TestAccount(login.user.id));
    const thread = (await raw.socket.expect({ type: 'direct_open', username: bob }, 'thread')).thread.id;
    const { devices } = await raw.socket.expect({ type: 'keys_get', user_ids: [b1.client.user!.id] }, 'keys');
    const recipients = [{ deviceId: sender.deviceId, encKey: sender.encKey }, ...devices.map((d: { device_id: number; enc_key: string }) => ({ deviceId: d.device_id, encKey: d.enc_key }))];
    const body = sealEnvelope(sender, { threadId: thread, clientMsgId: 'spec-1', senderUserId: login.user.id }, { text: 'from the spec' }, recipients);
    await raw.socket.expect({ type: 'send', thread_id: thread, client_msg_id: 'spec-1', kind: 'e2e', body }, 'ack');
    assert.equal((await b1.text(thread, 'from the spec')).e2e?.status, 'ok');
    await assert.rejects(b1.client.send(thread, { text: 'in the clear' }, { encrypted: false }), (error: Error & { code?: string }) => error.code === 'encryption_required');
    raw.socket.close();
  });

  it('a deployment that requires encryption refuses plaintext in every thread, and says so in each thread', async () => {
    const dir = tempDir();
    const strict = await startServer(['--data', join(dir, 'data'), '--config', writeConfig(dir, '[accounts]\nregistration = "open"\n[messages]\nrequire_e2e = true\n')]);
    try {
      const api = new AccountApi(strict.url);
      for (const name of ['erin', 'frank']) await api.register({ username: name, password: 'correct horse' });
      const login = await api.login({ username: 'erin', password: 'correct horse', device_name: 'raw', platform: 'bot' });
      const raw = await connectAuthenticated(strict.wsUrl, login.token);
      const opened = await raw.socket.expect({ type: 'direct_open', username: 'frank' }, 'thread');
      assert.equal(opened.thread.e2e_required, true);
      const plain = await raw.socket.expect({ type: 'send', thread_id: opened.thread.id, client_msg_id: 'x-1', body: { text: 'in the clear' } }, 'error');
      assert.equal(plain.error.code, 'encryption_required');
      raw.socket.close();
    } finally {
      await strict.stop();
    }
  });

  it('a thread that requires encryption refuses plaintext; malformed envelopes and forged keys are refused by field', async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const login = await new AccountApi(server.url).login({ username: alice, password: 'correct horse', device_name: 'raw', platform: 'bot' });
    const raw = await connectAuthenticated(server.wsUrl, login.token);
    const thread = (await raw.socket.expect({ type: 'direct_open', username: bob }, 'thread')).thread.id;
    const required = await raw.socket.expect({ type: 'require_e2e', thread_id: thread }, 'thread');
    assert.equal(required.thread.e2e_required, true);
    const plain = await raw.socket.expect({ type: 'send', thread_id: thread, client_msg_id: 'p-1', body: { text: 'in the clear' } }, 'error');
    assert.equal(plain.error.code, 'encryption_required');
    const noKeys = await raw.socket.expect({ type: 'send', thread_id: thread, client_msg_id: 'p-2', kind: 'e2e', body: envelope(login.device.id, [1]) }, 'error');
    assert.match(noKeys.error.message, /no approved keys/);
    const device = await approvedDevice(raw.socket, login.user.id, login.device.id, new TestAccount(login.user.id));
    const leaky = await raw.socket.expect({ type: 'send', thread_id: thread, client_msg_id: 'p-3', kind: 'e2e', body: { ...envelope(device.deviceId, [device.deviceId]), text: 'oops' } }, 'error');
    assert.deepEqual([leaky.error.code, leaky.error.field], ['invalid_field', 'body']);
    const forged = { ...device.publication(), signature: (new TestDevice(login.user.id, login.device.id).publication() as { signature: string }).signature };
    assert.equal((await raw.socket.expect({ type: 'keys_publish', ...forged }, 'error')).error.field, 'signature');
    raw.socket.close();
  });
});
