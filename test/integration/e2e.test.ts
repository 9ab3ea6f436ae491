import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AccountApi, ChatClient, type ClientMessage, type KeyChange } from '../../src/client/node.js';
import { TestAccount, TestDevice, approvedDevice, envelope, loadSodium } from '../helpers/e2e.js';
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
 * The SDK still speaks protocol 1 (its rewrite for protocol 2 is under way):
 * the server refuses its keys, so the tests that go through it wait for it.
 */
const SDK_V2 = { todo: 'SDK v2 in progress', timeout: 20_000 } as const;

/** Protocol 2 keys for a raw test device (pending: no account signature). */
function rawKeys(raw: Connected): Record<string, unknown> {
  return new TestDevice(raw.welcome.user.id, raw.welcome.device_id).publication();
}

/** Every message a client hands the app, waited on by event. */
class Inbox {
  readonly messages: ClientMessage[] = [];
  readonly keyChanges: KeyChange[] = [];
  private readonly waiters = new Set<() => void>();

  constructor(readonly client: ChatClient) {
    client.on('message', (message) => {
      this.messages.push(message);
      this.notify();
    });
    client.on('keys', (change) => {
      this.keyChanges.push(change);
      this.notify();
    });
  }

  until<T>(find: () => T | undefined): Promise<T> {
    const found = find();
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve) => {
      const check = (): void => {
        const value = find();
        if (value === undefined) return;
        this.waiters.delete(check);
        resolve(value);
      };
      this.waiters.add(check);
    });
  }

  /** The message of that thread whose decrypted text is `text`. */
  text(threadId: number, text: string): Promise<ClientMessage> {
    return this.until(() => this.messages.find((m) => m.thread_id === threadId && (m.body as { text?: string })?.text === text));
  }

  /** The next e2e message of the thread after seq `after`. */
  encryptedAfter(threadId: number, after: number): Promise<ClientMessage> {
    return this.until(() => this.messages.find((m) => m.thread_id === threadId && m.kind === 'e2e' && m.seq > after));
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
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

  async function device(username: string): Promise<Inbox & { token: string; deviceId: number }> {
    const login = await new AccountApi(server.url).login({ username, password: 'correct horse', device_name: 'e2e test', platform: 'bot' });
    const client = new ChatClient({ server: server.url, token: login.token, encryption: true, reconnect: { initialDelayMs: 50, maxDelayMs: 400 } });
    clients.push(client);
    const inbox = new Inbox(client);
    await client.start();
    await client.whenOnline();
    return Object.assign(inbox, { token: login.token, deviceId: login.device.id });
  }

  it('two users with two devices each: every device decrypts, in a direct thread and in a group', SDK_V2, async () => {
    const [alice, bob, carol] = [await user('alice'), await user('bob'), await user('carol')];
    const [a1, a2, b1, b2, c1] = [await device(alice), await device(alice), await device(bob), await device(bob), await device(carol)];
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
    const [ownFingerprint] = await b1.client.fingerprints(await b1.client.user!.id);
    assert.match(ownFingerprint?.fingerprint ?? '', /^(\d{5} ){11}\d{5}$/);
  });

  it('the database file and the server log hold none of the plaintext', SDK_V2, async () => {
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

  it('a sender with a stale device list is refused with the missing and extra devices, and the SDK retries', SDK_V2, async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const [a1, b1, b2] = [await device(alice), await device(bob), await device(bob)];
    const thread = await a1.client.openDirect(bob);
    await a1.client.send(thread.id, { text: 'before' }, { encrypted: true });
    await b1.text(thread.id, 'before');
    // b2 logs out: no event tells a1, whose list of the thread's devices still has b2.
    assert.equal((await request(`${server.url}/v1/devices/${b2.deviceId}`, { method: 'DELETE', token: b1.token })).status, 204);
    await a1.client.send(thread.id, { text: 'after the logout' }, { encrypted: true });
    assert.equal((await b1.text(thread.id, 'after the logout')).e2e?.status, 'ok');
    // The same refusal, seen on the wire: a raw device of alice with keys, sealing to the wrong devices.
    const raw = await connectAuthenticated(server.wsUrl, (await new AccountApi(server.url).login({ username: alice, password: 'correct horse', device_name: 'raw', platform: 'bot' })).token);
    await raw.socket.expect({ type: 'keys_publish', ...rawKeys(raw) }, 'ok');
    const rawId = raw.welcome.device_id as number;
    const refused = await raw.socket.expect({ type: 'send', thread_id: thread.id, client_msg_id: 'stale-1', kind: 'e2e', body: envelope(rawId, [rawId, b2.deviceId]) }, 'error');
    assert.equal(refused.error.code, 'devices_changed');
    assert.deepEqual(refused.error.extra_devices, [b2.deviceId]);
    assert.deepEqual([...refused.error.missing_devices].sort((x: number, y: number) => x - y), [a1.deviceId, b1.deviceId]);
    raw.socket.close();
  });

  it('a forged signature is detected by the receiver', SDK_V2, async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const [a1, b1] = [await device(alice), await device(bob)];
    const thread = await a1.client.openDirect(bob);
    await a1.client.send(thread.id, { text: 'a real one' }, { encrypted: true });
    const real = await b1.text(thread.id, 'a real one');
    // A device of alice's that signs nothing properly (its envelope has random bytes for a signature).
    const raw = await connectAuthenticated(server.wsUrl, (await new AccountApi(server.url).login({ username: alice, password: 'correct horse', device_name: 'forger', platform: 'bot' })).token);
    await raw.socket.expect({ type: 'keys_publish', ...rawKeys(raw) }, 'ok');
    const { devices } = await raw.socket.expect({ type: 'keys_get', user_ids: [(a1.client.user!).id, (b1.client.user!).id] }, 'keys');
    const rawId = raw.welcome.device_id as number;
    await raw.socket.expect({ type: 'send', thread_id: thread.id, client_msg_id: 'forged-1', kind: 'e2e', body: envelope(rawId, devices.map((d: any) => d.device_id)) }, 'ack');
    const forged = await b1.encryptedAfter(thread.id, real.seq);
    assert.equal(forged.e2e?.status, 'bad_signature');
    raw.socket.close();
  });

  it('a key rotation reaches the peers; history from before it still opens on both sides', SDK_V2, async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const [a1, b1] = [await device(alice), await device(bob)];
    const thread = await a1.client.openDirect(bob);
    await b1.client.send(thread.id, { text: 'old keys' }, { encrypted: true });
    await a1.client.send(thread.id, { text: 'sealed to the old key' }, { encrypted: true });
    const before = (await a1.text(thread.id, 'old keys')).e2e?.fingerprint;
    await b1.text(thread.id, 'sealed to the old key');
    const fingerprint = await b1.client.rotateKeys();
    const change = await a1.until(() => a1.keyChanges.find((c) => c.device_id === b1.deviceId && c.reason === 'rotated'));
    assert.equal(fingerprint, before, 'the identity (signing key) stays: the fingerprint does not change');
    assert.deepEqual([change.fingerprint, change.previous_fingerprint], [before, before]);
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

  it('a device whose identity key changes is reported as changed, with the fingerprint remembered from before', SDK_V2, async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const a1 = await device(alice);
    const bobLogin = await new AccountApi(server.url).login({ username: bob, password: 'correct horse', device_name: 'raw', platform: 'bot' });
    const raw = await connectAuthenticated(server.wsUrl, bobLogin.token);
    await raw.socket.expect({ type: 'keys_publish', ...rawKeys(raw) }, 'ok');
    await a1.client.openDirect(bob);
    // Looking at bob's fingerprints is first contact with his device.
    const [seen] = await a1.client.fingerprints(bobLogin.user.id);
    const first = await a1.until(() => a1.keyChanges.find((c) => c.device_id === bobLogin.device.id));
    assert.equal(seen?.fingerprint, first.fingerprint);
    assert.equal(first.reason, 'new');
    // The same device, other keys: what a server replacing keys would look like.
    await raw.socket.expect({ type: 'keys_publish', ...rawKeys(raw) }, 'ok');
    const changed = await a1.until(() => a1.keyChanges.find((c) => c.device_id === bobLogin.device.id && c.reason === 'changed'));
    assert.equal(changed.previous_fingerprint, first.fingerprint);
    assert.notEqual(changed.fingerprint, first.fingerprint);
    raw.socket.close();
  });

  it('a device added later cannot read older messages and says so; it reads the new ones', SDK_V2, async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const [a1] = [await device(alice), await device(bob)];
    const thread = await a1.client.openDirect(bob);
    await a1.client.send(thread.id, { text: 'before your new phone' }, { encrypted: true });
    const late = await device(bob);
    const page = await late.client.history(thread.id);
    const old = page.messages.find((m) => m.kind === 'e2e');
    assert.equal(old?.e2e?.status, 'undecryptable');
    assert.equal((old?.body as { text?: string }).text, undefined, 'the envelope, not a guess');
    await a1.client.send(thread.id, { text: 'welcome, new phone' }, { encrypted: true });
    assert.equal((await late.text(thread.id, 'welcome, new phone')).e2e?.status, 'ok');
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
