import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import {
  AccountApi, ChatClient, type ClientMessage, type ClientStore, FileStore, MemoryStore,
} from '../../src/client/node.js';
import { TestAccount, TestDevice, approvedDevice, loadSodium } from '../helpers/e2e.js';
import { ClientEvents } from '../helpers/client-events.js';
import { FrameMitm } from '../helpers/frame-mitm.js';
import { type ServerProcess, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { type TestSocket, connectAuthenticated } from '../helpers/ws.js';

/**
 * Issue 17's "malicious server" suite: the real server (dist/), real SDK
 * clients with encryption on, and the test as the operator — editing the
 * SQLite file while the server runs (WAL lets a second writer in; the server
 * reads keys, thread flags and members per request) — or as a man in the
 * middle rewriting WebSocket frames (test/helpers/frame-mitm.ts). Each case
 * checks that the attack is refused or surfaced to the app AND that nothing
 * readable reached the attacker: the plaintext's bytes are in no frame the
 * attacker saw and in no database file, and sealed keys do not open with the
 * attacker's own key pairs. The threat model these cases back: docs/e2e.md.
 */

type Sodium = {
  crypto_box_seal(message: Uint8Array, publicKey: Uint8Array): Uint8Array;
  crypto_box_seal_open(ciphertext: Uint8Array, publicKey: Uint8Array, privateKey: Uint8Array): Uint8Array;
  crypto_sign_detached(message: Uint8Array, privateKey: Uint8Array): Uint8Array;
  crypto_generichash(length: number, message: Uint8Array, key: Uint8Array): Uint8Array;
  crypto_aead_xchacha20poly1305_ietf_encrypt(message: Uint8Array, additional: Uint8Array, secretNonce: null, nonce: Uint8Array, key: Uint8Array): Uint8Array;
  randombytes_buf(length: number): Uint8Array;
};
let sodium: Sodium;
const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');
const raw = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64'));
const utf8 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'utf8'));

/** Whether `sealed` (base64) opens with this X25519 pair (base64). */
function opensWith(sealed: string, pair: { public: string; secret: string }): boolean {
  try {
    sodium.crypto_box_seal_open(raw(sealed), raw(pair.public), raw(pair.secret));
    return true;
  } catch {
    return false;
  }
}

/** One SDK client and everything it told the app, waited on by event. */
class Peer extends ClientEvents {
  constructor(
    client: ChatClient,
    readonly username: string,
    readonly token: string,
    readonly store: ClientStore,
  ) {
    super(client);
  }

  get userId(): number {
    return (this.client.user as { id: number }).id;
  }

  get deviceId(): number {
    return this.client.deviceId as number;
  }

  /** The next e2e message of the thread after seq `after` (opened or not). */
  encryptedAfter(threadId: number, after: number): Promise<ClientMessage> {
    return this.until(() => this.messages.find((m) => m.thread_id === threadId && m.kind === 'e2e' && m.seq > after), `an e2e message after seq ${after}`);
  }

  errorCoded(code: string): Promise<Error> {
    return this.until(() => this.errors.find((e) => (e as { code?: string }).code === code), `error ${code}`);
  }

  /** A timeout says who waited and what the client had seen: these cases fail far from the cause. */
  protected override describeTimeout(what: string, ms: number): string {
    return `${this.username}: no ${what} within ${ms} ms; errors: ${this.errors.map((e) => e.message).join(' | ')}; messages: ${JSON.stringify(this.messages.map((m) => [m.thread_id, m.seq, m.kind, m.e2e?.status]))}; state ${this.client.state}`;
  }
}

describe('end-to-end encryption against a malicious server (issue 17)', { timeout: 180_000 }, () => {
  let server: ServerProcess;
  let data: string;
  let db: Database.Database;
  const peers: Peer[] = [];
  const mitms: FrameMitm[] = [];
  const sockets: TestSocket[] = [];
  let names = 0;

  before(async () => {
    await loadSodium();
    const module = (await import('libsodium-wrappers')) as { default?: unknown };
    const loaded = (module.default ?? module) as Sodium & { ready: Promise<void> };
    await loaded.ready;
    sodium = loaded;
    const dir = tempDir();
    data = join(dir, 'data');
    const config = '[accounts]\nregistration = "open"\n[rate_limit]\nlogin_per_address = 100000\n[websocket]\nframes_per_second = 1000\n';
    server = await startServer(['--data', data, '--config', writeConfig(dir, config)]);
    // The operator's own connection to the live database (WAL: the server keeps running and reads what we write).
    db = new Database(join(data, 'chatd.db'));
    db.pragma('busy_timeout = 5000');
  });
  after(async () => {
    await Promise.all(peers.map((peer) => peer.client.close()));
    for (const socket of sockets) socket.close();
    await Promise.all(mitms.map((mitm) => mitm.close()));
    db.close();
    await server.stop();
  });

  async function user(prefix: string): Promise<string> {
    const name = `${prefix}${++names}`;
    await new AccountApi(server.url).register({ username: name, password: 'correct horse' });
    return name;
  }

  async function mitm(): Promise<FrameMitm> {
    const made = await FrameMitm.start(server.wsUrl);
    mitms.push(made);
    return made;
  }

  /** A new device of `username` (logged in), or the same device again (`token`), online. */
  async function device(username: string, options: { via?: FrameMitm; store?: ClientStore; token?: string } = {}): Promise<Peer> {
    const token = options.token ?? (await new AccountApi(server.url).login({ username, password: 'correct horse', device_name: 'attack test', platform: 'bot' })).token;
    const store = options.store ?? new MemoryStore();
    const client = new ChatClient({ server: options.via?.url ?? server.url, token, store, encryption: true, reconnect: { initialDelayMs: 50, maxDelayMs: 400 } });
    const peer = new Peer(client, username, token, store);
    peers.push(peer);
    await client.start();
    await client.whenOnline();
    // `online` is about messages; this device's keys are settled (published, standing known) when `account` comes.
    await peer.until(() => peer.standings[0], 'its account standing');
    return peer;
  }

  /** The same device restarted: the old client closed, a new one on the same store (a FileStore: read again from its file). */
  async function restart(peer: Peer, options: { via?: FrameMitm; path?: string } = {}): Promise<Peer> {
    await peer.client.close();
    return device(peer.username, { token: peer.token, store: options.path ? new FileStore(options.path) : peer.store, ...(options.via ? { via: options.via } : {}) });
  }

  /** A raw test socket of a new device of `username`. */
  async function rawDevice(username: string): Promise<{ socket: TestSocket; userId: number; deviceId: number }> {
    const login = await new AccountApi(server.url).login({ username, password: 'correct horse', device_name: 'raw', platform: 'bot' });
    const { socket } = await connectAuthenticated(server.wsUrl, login.token);
    sockets.push(socket);
    return { socket, userId: login.user.id, deviceId: login.device.id };
  }

  /** The plaintext is in no frame the attacker relayed, no database file and no server log line. */
  function assertNowhere(plaintext: string, ...relays: FrameMitm[]): void {
    const needle = Buffer.from(plaintext, 'utf8');
    for (const relay of relays) assert.equal(relay.saw(plaintext), false, 'a relayed frame holds the plaintext');
    for (const file of readdirSync(data).filter((name) => name.startsWith('chatd.db'))) {
      assert.equal(readFileSync(join(data, file)).indexOf(needle), -1, `${file} holds the plaintext`);
    }
    assert.doesNotMatch(JSON.stringify(server.logs), new RegExp(plaintext.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  }

  /** The envelopes the server stored for a thread. */
  function storedEnvelopes(threadId: number): Array<{ seq: number; keys: Record<string, string> }> {
    return db
      .prepare<[number], { seq: number; body: string }>("SELECT seq, body FROM messages WHERE thread_id = ? AND kind = 'e2e' ORDER BY seq")
      .all(threadId)
      .map((row) => ({ seq: row.seq, keys: (JSON.parse(row.body) as { keys: Record<string, string> }).keys }));
  }

  /** The e2e fields of a FileStore's file (what the client keeps: secrets, pins, thread flags). */
  function storedE2e(path: string): Record<string, unknown> {
    const document = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    const fields = ['deviceSecrets', 'account', 'knownDevices', 'accounts', 'e2eThreads', 'historyKeys', 'grants', 'deviceMessagesSeen', 'owedGrants'];
    return Object.fromEntries(fields.filter((field) => document[field] !== undefined).map((field) => [field, document[field]]));
  }

  /** The current encryption key pair of a FileStore's device. */
  function storedPair(path: string): { public: string; secret: string } {
    const secrets = storedE2e(path).deviceSecrets as { enc_public: string; enc_secret: string };
    return { public: secrets.enc_public, secret: secrets.enc_secret };
  }

  /** Inserts a device row for a user as an operator would: no login, keys of the attacker's choosing. */
  function insertGhost(userId: number, accountSignature: (ghost: TestDevice) => string | null): TestDevice {
    const id = (db.prepare('SELECT max(id) + 1 AS id FROM devices').get() as { id: number }).id;
    const ghost = new TestDevice(userId, id);
    const entry = ghost.entry(null) as { signature: string };
    db.prepare(
      `INSERT INTO devices (id, user_id, name, platform, created_at, enc_key, sign_key, key_counter, key_signature, account_signature, keys_at)
       VALUES (?, ?, 'ghost', 'bot', ?, ?, ?, 1, ?, ?, ?)`,
    ).run(id, userId, Date.now(), ghost.encKey, ghost.signKey, entry.signature, accountSignature(ghost), Date.now());
    return ghost;
  }

  describe('ghost devices', () => {
    it("a device the operator inserts for bob gets nothing sealed; bob's own device is asked to approve it; when the server insists, the sender gets untrusted_devices", async () => {
      const [aliceName, bobName] = [await user('alice'), await user('bob')];
      const relay = await mitm();
      const [alice, bob] = [await device(aliceName, { via: relay }), await device(bobName)];
      const thread = await alice.client.openDirect(bobName);
      await alice.client.send(thread.id, { text: 'before the ghost' }, { encrypted: true });
      await bob.text(thread.id, 'before the ghost');

      // Pending ghost (no account signature): the server does not ask for it; the SDK seals nothing to it.
      const ghost = insertGhost(bob.userId, () => null);
      const pair = { public: ghost.encKey, secret: b64(ghost.encSecret) };
      const first = 'ghost-secret-1: the quarterly numbers';
      await alice.client.send(thread.id, { text: first }, { encrypted: true });
      assert.equal((await bob.text(thread.id, first)).e2e?.status, 'ok');
      // Bob's device sees a device of his that his account key never approved.
      const listed = await bob.client.devices();
      assert.deepEqual(listed.find((d) => d.device_id === ghost.deviceId)?.state, 'pending');
      const request = await bob.until(() => bob.deviceRequests.find((r) => r.device_id === ghost.deviceId), 'device_request');
      assert.match(request.fingerprint, /^(\d{5} ){11}\d{5}$/);

      // The operator certifies the ghost with an account key of their own: now the server insists on it.
      const attacker = new TestAccount(bob.userId);
      db.prepare('UPDATE devices SET account_signature = ? WHERE id = ?').run(attacker.certify(ghost), ghost.deviceId);
      const second = 'ghost-secret-2: the merger is off';
      await assert.rejects(alice.client.send(thread.id, { text: second }, { encrypted: true }), (error: { code?: string; message: string }) => {
        assert.equal(error.code, 'untrusted_devices');
        assert.match(error.message, new RegExp(`device\\(s\\) ${ghost.deviceId}`));
        return true;
      });
      await alice.errorCoded('untrusted_devices');
      const failed = alice.statuses.find((s) => s.status === 'failed');
      assert.equal((failed?.error as { code?: string } | undefined)?.code, 'untrusted_devices');

      // Nothing readable reached the attacker.
      for (const text of [first, second]) assertNowhere(text, relay);
      const envelopes = storedEnvelopes(thread.id);
      assert.equal(envelopes.length, 2, 'the refused message was never stored');
      for (const envelope of envelopes) {
        assert.equal(envelope.keys[String(ghost.deviceId)], undefined);
        for (const sealed of Object.values(envelope.keys)) assert.equal(opensWith(sealed, pair), false);
      }
      for (const frame of relay.frames().filter((f) => f.type === 'send')) {
        assert.equal(frame.body.keys[String(ghost.deviceId)], undefined, 'never sealed to the ghost, not even in a refused attempt');
      }
    });
  });

  describe('a device relabelled to another user', () => {
    it("in the database (devices.user_id and the messages' sender): a refused key report, and the moved messages are bad_signature, never ok from the wrong user", async () => {
      const [aliceName, bobName, carolName] = [await user('alice'), await user('bob'), await user('carol')];
      const [alice, bob, carol] = [await device(aliceName), await device(bobName), await device(carolName)];
      const group = await carol.client.createGroup('three', [aliceName, bobName]);
      const said = 'relabel-secret: alice said this';
      await alice.client.send(group.id, { text: said }, { encrypted: true });
      assert.equal((await carol.text(group.id, said)).sender_id, alice.userId);
      await bob.text(group.id, said);

      // The operator moves alice's device, and what it sent, to bob.
      db.prepare('UPDATE devices SET user_id = ? WHERE id = ?').run(bob.userId, alice.deviceId);
      db.prepare('UPDATE messages SET sender_user_id = ? WHERE sender_device_id = ?').run(bob.userId, alice.deviceId);
      const restarted = await restart(carol);
      // The device's self-signature binds its user id: the server's new word does not verify and changes no pin.
      const refusal = await restarted.until(() => restarted.errors.find((e) => e.message.includes(`device ${alice.deviceId}'s keys are not signed`)), 'the refused report');
      assert.equal((refusal as { code?: string }).code, 'bad_reply');
      assert.equal(restarted.keys.some((k) => k.device_id === alice.deviceId && k.trusted), false);
      const pinned = await restarted.client.fingerprints(alice.userId);
      assert.deepEqual(pinned.map((d) => d.device_id), [alice.deviceId], "the pin stays alice's");
      const page = await restarted.client.history(group.id);
      const moved = page.messages.filter((m) => m.sender_device_id === alice.deviceId);
      assert.equal(moved.length, 1);
      assert.equal(moved[0]?.sender_id, bob.userId, 'the server now says bob sent it');
      assert.equal(moved[0]?.e2e?.status, 'bad_signature');
      assert.equal((moved[0]?.body as { text?: string }).text, undefined);
      assertNowhere(said);
      db.prepare('UPDATE messages SET sender_user_id = ? WHERE sender_device_id = ?').run(alice.userId, alice.deviceId);
      db.prepare('UPDATE devices SET user_id = ? WHERE id = ?').run(alice.userId, alice.deviceId);
    });

    it('by a man in the middle (keys, keys_changed and every message frame say bob): bad_signature, never ok from the wrong user', async () => {
      const [aliceName, bobName, carolName] = [await user('alice'), await user('bob'), await user('carol')];
      const relay = await mitm();
      const [alice, bob] = [await device(aliceName), await device(bobName)];
      // Carol is new to both: every key report and message she ever sees says alice's device is bob's.
      let relabel = (_frame: unknown): void => {};
      relay.rewrite = (frame) => {
        relabel(frame);
        return frame;
      };
      const carol = await device(carolName, { via: relay });
      const group = await carol.client.createGroup('three', [aliceName, bobName]);
      relabel = function walk(value: unknown): void {
        if (Array.isArray(value)) return value.forEach(walk);
        if (typeof value !== 'object' || value === null) return;
        const object = value as Record<string, unknown>;
        if (object.sender_device_id === alice.deviceId) object.sender_id = bob.userId;
        if (object.device_id === alice.deviceId && typeof object.enc_key === 'string') object.user_id = bob.userId;
        Object.values(object).forEach(walk);
      };
      // Carol's own send fetches the members' keys: alice's device, reported as bob's, fails its self-signature
      // (which binds the user id) and is refused; the server insists on it, so carol's message fails.
      await assert.rejects(carol.client.send(group.id, { text: 'carol first' }, { encrypted: true }), { code: 'untrusted_devices' });
      const said = 'mitm-relabel-secret: alice said this';
      await alice.client.send(group.id, { text: said }, { encrypted: true });
      await bob.text(group.id, said);
      const seen = await carol.encryptedAfter(group.id, 0);
      assert.equal(seen.sender_id, bob.userId);
      // The relabelled key report fails the device's self-signature (it binds the user id): refused, so the sender
      // is unknown; and the envelope's signature binds alice's user id, so bob's name on it would be bad_signature.
      assert.ok(['unknown_sender', 'bad_signature'].includes(seen.e2e?.status as string), String(seen.e2e?.status));
      const refusal = await carol.until(() => carol.errors.find((e) => e.message.includes(`device ${alice.deviceId}'s keys are not signed`)), 'the refused report');
      assert.equal((refusal as { code?: string }).code, 'bad_reply');
      const page = await carol.client.history(group.id);
      const statuses = page.messages.filter((m) => m.kind === 'e2e').map((m) => m.e2e?.status);
      assert.equal(statuses.length, 1);
      assert.notEqual(statuses[0], 'ok');
      // Now only the messages are relabelled: carol learns alice's device honestly (her own send fetches the
      // members' keys) and pins it as alice's; a message of it under bob's name is bad_signature.
      relabel = function walk(value: unknown): void {
        if (Array.isArray(value)) return value.forEach(walk);
        if (typeof value !== 'object' || value === null) return;
        const object = value as Record<string, unknown>;
        if (object.sender_device_id === alice.deviceId) object.sender_id = bob.userId;
        Object.values(object).forEach(walk);
      };
      await carol.client.send(group.id, { text: 'carol here' }, { encrypted: true });
      await alice.text(group.id, 'carol here');
      const pinned = await carol.client.fingerprints(alice.userId);
      assert.deepEqual(pinned.map((d) => [d.device_id, d.trusted]), [[alice.deviceId, true]]);
      const again = 'mitm-relabel-secret-2: alice again';
      await alice.client.send(group.id, { text: again }, { encrypted: true });
      const second = await carol.until(() => carol.messages.find((m) => m.kind === 'e2e' && m.sender_device_id === alice.deviceId && m.seq > seen.seq), 'the second message');
      assert.equal(second.sender_id, bob.userId);
      assert.equal(second.e2e?.status, 'bad_signature');
      assert.equal(carol.messages.some((m) => m.e2e?.status === 'ok' && m.sender_id === bob.userId), false, 'never ok under the wrong user');
      for (const text of [said, again]) assertNowhere(text, relay);
    });
  });

  describe("this device's keys", () => {
    it("substituted by the server (keys reply and keys_changed under this device's id): key_mismatch, and nothing is sealed to the substituted key", async () => {
      const [aliceName, bobName] = [await user('alice'), await user('bob')];
      const relay = await mitm();
      const path = join(tempDir(), 'alice.json');
      const [alice, bob] = [await device(aliceName, { via: relay, store: new FileStore(path) }), await device(bobName)];
      const thread = await alice.client.openDirect(bobName);
      const impostor = new TestDevice(alice.userId, alice.deviceId);
      const impostorPair = { public: impostor.encKey, secret: b64(impostor.encSecret) };
      const entry = impostor.entry(null);
      relay.rewrite = (frame, link, direction) => {
        if (direction === 'down' && link.answers(frame) === 'keys_get') {
          frame.devices = frame.devices.map((d: { device_id: number }) => (d.device_id === alice.deviceId ? entry : d));
        }
        return frame;
      };
      relay.links.at(-1)?.toClient({ type: 'keys_changed', ...entry });
      const alarm = await alice.errorCoded('key_mismatch');
      assert.match(alarm.message, new RegExp(`not its own`));
      const listed = await alice.client.devices();
      assert.deepEqual(listed.filter((d) => d.state === 'this').map((d) => d.fingerprint), [alice.client.ownFingerprint()]);
      const secret = 'substituted-secret: my own copy stays mine';
      await alice.client.send(thread.id, { text: secret }, { encrypted: true });
      assert.equal((await bob.text(thread.id, secret)).e2e?.status, 'ok');
      assert.equal((await alice.text(thread.id, secret)).e2e?.status, 'ok');
      const sends = relay.frames().filter((f) => f.type === 'send' && f.thread_id === thread.id);
      assert.equal(sends.length, 1);
      const own = sends[0].body.keys[String(alice.deviceId)] as string;
      assert.equal(opensWith(own, storedPair(path)), true, "this device's copy is sealed to its own key, from its store");
      for (const sealed of Object.values(sends[0].body.keys as Record<string, string>)) assert.equal(opensWith(sealed, impostorPair), false);
      assertNowhere(secret, relay);
    });
  });

  describe('the encryption requirement cleared', () => {
    it('in the database (threads.e2e_required = 0), seen by a client restarted on its FileStore: encryption_downgrade, it still encrypts, a plaintext send is refused locally', async () => {
      const [aliceName, bobName] = [await user('alice'), await user('bob')];
      const path = join(tempDir(), 'alice.json');
      const [alice, bob] = [await device(aliceName, { store: new FileStore(path) }), await device(bobName)];
      const group = await alice.client.createGroup('required', [bobName], { e2eRequired: true });
      await alice.client.send(group.id, { text: 'while required' });
      assert.equal((await bob.text(group.id, 'while required')).kind, 'e2e');
      await alice.client.close();
      db.prepare('UPDATE threads SET e2e_required = 0 WHERE id = ?').run(group.id);
      const restarted = await device(aliceName, { token: alice.token, store: new FileStore(path) });
      const alarm = await restarted.errorCoded('encryption_downgrade');
      assert.match(alarm.message, new RegExp(`thread ${group.id} no longer requires encryption`));
      assert.equal(restarted.client.cachedThreads().find((t) => t.id === group.id)?.e2e_required, false, 'the server did say so');
      const secret = 'downgrade-secret: still sealed';
      const sent = await restarted.client.send(group.id, { text: secret });
      assert.equal((await bob.text(group.id, secret)).kind, 'e2e');
      assert.equal(db.prepare('SELECT kind FROM messages WHERE thread_id = ? AND seq = ?').pluck().get(group.id, sent.seq), 'e2e');
      const rows = db.prepare('SELECT count(*) FROM messages WHERE thread_id = ?').pluck().get(group.id);
      const plain = 'downgrade-plain: would go in the clear';
      await assert.rejects(restarted.client.send(group.id, { text: plain }, { encrypted: false }), { code: 'encryption_required' });
      assert.equal(restarted.client.pending().length, 0, 'nothing stored to be sent later');
      assert.equal(db.prepare('SELECT count(*) FROM messages WHERE thread_id = ?').pluck().get(group.id), rows);
      for (const text of [secret, plain]) assertNowhere(text);
      db.prepare('UPDATE threads SET e2e_required = 1 WHERE id = ?').run(group.id);
    });

    it('by a man in the middle rewriting threads and thread replies: encryption_downgrade, it still encrypts, a plaintext send never leaves the client', async () => {
      const [aliceName, bobName] = [await user('alice'), await user('bob')];
      const relay = await mitm();
      const [alice, bob] = [await device(aliceName, { via: relay }), await device(bobName)];
      const group = await bob.client.createGroup('required', [aliceName], { e2eRequired: true });
      await bob.client.send(group.id, { text: 'from bob, required' });
      await alice.text(group.id, 'from bob, required');
      relay.rewrite = (frame, _link, direction) => {
        if (direction !== 'down') return frame;
        for (const thread of [...(frame.type === 'threads' ? frame.threads : []), ...(frame.type === 'thread' ? [frame.thread] : [])]) thread.e2e_required = false;
        return frame;
      };
      const { threads } = await alice.client.threads();
      assert.equal(threads.find((t) => t.id === group.id)?.e2e_required, false);
      await alice.errorCoded('encryption_downgrade');
      const secret = 'mitm-downgrade-secret: still sealed';
      await alice.client.send(group.id, { text: secret });
      assert.equal((await bob.text(group.id, secret)).e2e?.status, 'ok');
      const plain = 'mitm-downgrade-plain: would go in the clear';
      await assert.rejects(alice.client.send(group.id, { text: plain }, { encrypted: false }), { code: 'encryption_required' });
      assert.equal(relay.frames().filter((f) => f.type === 'send' && f.kind !== 'e2e').length, 0, 'no plaintext send ever passed the relay');
      for (const text of [secret, plain]) assertNowhere(text, relay);
    });
  });

  describe('replays', () => {
    it("an old encryption key served again after a rotation is refused (the pin stays) and nothing is sealed to it", async () => {
      const [aliceName, bobName] = [await user('alice'), await user('bob')];
      const relay = await mitm();
      const path = join(tempDir(), 'bob.json');
      const [alice, bob] = [await device(aliceName, { via: relay }), await device(bobName, { store: new FileStore(path) })];
      const thread = await alice.client.openDirect(bobName);
      await alice.client.send(thread.id, { text: 'before the rotation' }, { encrypted: true });
      await bob.text(thread.id, 'before the rotation');
      // The attacker kept bob's first key report (as the server stored it) and bob's first secret leaked later.
      const old = db
        .prepare<[number], Record<string, unknown>>(
          `SELECT user_id, id AS device_id, enc_key, sign_key, key_counter AS counter, key_signature AS signature, account_signature, 0 AS revoked FROM devices WHERE id = ?`,
        )
        .get(bob.deviceId) as Record<string, unknown>;
      const oldEntry = { ...old, revoked: false };
      const oldPair = storedPair(path);
      await bob.client.rotateKeys();
      await alice.until(() => alice.keys.find((k) => k.device_id === bob.deviceId && k.reason === 'rotated'), 'the rotation');
      const newPair = storedPair(path);
      assert.notEqual(newPair.public, oldPair.public);

      let replaying = true;
      relay.rewrite = (frame, link, direction) => {
        if (replaying && direction === 'down' && link.answers(frame) === 'keys_get') {
          frame.devices = frame.devices.map((d: { device_id: number }) => (d.device_id === bob.deviceId ? oldEntry : d));
        }
        return frame;
      };
      relay.links.at(-1)?.toClient({ type: 'keys_changed', ...oldEntry });
      const refused = await alice.until(() => alice.keys.find((k) => k.device_id === bob.deviceId && k.reason === 'changed'), 'the refusal');
      assert.equal(refused.trusted, false);
      const pins = await alice.client.fingerprints(bob.userId);
      assert.deepEqual(pins.map((d) => [d.device_id, d.mismatch]), [[bob.deviceId, true]], 'the pin stays; the report is flagged');
      const secret = 'old-key-secret: not for the old key';
      await assert.rejects(alice.client.send(thread.id, { text: secret }, { encrypted: true }), { code: 'untrusted_devices' });
      // The attacker stops; the pin (counter 2) was kept all along, so the next send seals to the new key.
      replaying = false;
      const later = 'old-key-secret-2: for the new key only';
      await alice.client.send(thread.id, { text: later }, { encrypted: true });
      assert.equal((await bob.text(thread.id, later)).e2e?.status, 'ok');
      const sends = relay.frames().filter((f) => f.type === 'send' && f.thread_id === thread.id);
      assert.equal(opensWith(sends.at(-1).body.keys[String(bob.deviceId)], newPair), true);
      // The first send (before the rotation) was rightly sealed to the old key; none after it.
      assert.equal(sends.slice(1).some((frame) => Object.values(frame.body.keys as Record<string, string>).some((sealed) => opensWith(sealed, oldPair))), false);
      for (const text of [secret, later]) assertNowhere(text, relay);
    });

    it('the same envelope delivered again at a new seq is `replayed`', async () => {
      const [aliceName, bobName] = [await user('alice'), await user('bob')];
      const relay = await mitm();
      const [alice, bob] = [await device(aliceName), await device(bobName, { via: relay })];
      const thread = await alice.client.openDirect(bobName);
      const secret = 'replay-secret: transfer 100 to carol';
      await alice.client.send(thread.id, { text: secret }, { encrypted: true });
      const original = await bob.text(thread.id, secret);
      assert.equal(original.e2e?.status, 'ok');
      const delivered = relay.frames().find((f) => f.type === 'message' && f.message.seq === original.seq && f.message.thread_id === thread.id);
      relay.links.at(-1)?.toClient({ ...delivered, message: { ...delivered.message, id: delivered.message.id + 1000, seq: original.seq + 1 } });
      const copy = await bob.encryptedAfter(thread.id, original.seq);
      assert.equal(copy.e2e?.status, 'replayed');
      assert.equal((copy.body as { text?: string }).text, undefined, 'the envelope, not the body again');
      assertNowhere(secret, relay);
    });
  });

  describe('withheld key news', () => {
    it("a contact's device announced without its account key (account_changed dropped) is not taken for untrusted: the account key is fetched before judging", async () => {
      const [aliceName, bobName] = [await user('alice'), await user('bob')];
      const relay = await mitm();
      relay.rewrite = (frame, _link, direction) => (direction === 'down' && frame.type === 'account_changed' ? null : frame);
      const alice = await device(aliceName, { via: relay });
      const bob = await rawDevice(bobName);
      const thread = (await bob.socket.expect({ type: 'direct_open', username: aliceName }, 'thread')).thread.id as number;
      // Bob's first device makes his account key and an approved device; alice hears keys_changed only.
      const account = new TestAccount(bob.userId);
      const bobDevice = await approvedDevice(bob.socket, bob.userId, bob.deviceId, account);
      await relay.until((f) => f.type === 'keys_changed' && f.device_id === bob.deviceId && f.account_signature !== null);
      const { devices } = await bob.socket.expect({ type: 'keys_get', user_ids: [alice.userId, bob.userId] }, 'keys');
      const recipients = devices.filter((d: { revoked: boolean; account_signature: string | null }) => !d.revoked && d.account_signature).map((d: { device_id: number; enc_key: string }) => ({ deviceId: d.device_id, encKey: d.enc_key }));
      const { sealEnvelope } = await import('../helpers/e2e.js');
      const body = sealEnvelope(bobDevice, { threadId: thread, clientMsgId: 'withheld-1', senderUserId: bob.userId }, { text: 'hello from a new contact' }, recipients);
      await bob.socket.expect({ type: 'send', thread_id: thread, client_msg_id: 'withheld-1', kind: 'e2e', body }, 'ack');
      const got = await alice.encryptedAfter(thread, 0);
      assert.equal(got.e2e?.status, 'ok');
      assert.deepEqual(alice.identities.map((i) => [i.user_id, i.reason]), [[bob.userId, 'new']]);
    });
  });

  describe('equivocation', () => {
    /** A hand-made envelope from `sender`: the body under K1, `commit` of the chosen key, and per recipient the key chosen for it. */
    function twoFacedEnvelope(
      sender: TestDevice,
      context: { threadId: number; clientMsgId: string },
      body: unknown,
      keyFor: (deviceId: number) => Uint8Array,
      encryptWith: Uint8Array,
      commitTo: Uint8Array,
      recipients: ReadonlyArray<{ deviceId: number; encKey: string }>,
    ): Record<string, unknown> {
      const derive = (label: string, key: Uint8Array): Uint8Array => sodium.crypto_generichash(32, utf8(label), key);
      const nonce = b64(sodium.randombytes_buf(24));
      const commit = b64(derive('chatd-e2e-v2-commit', commitTo));
      const ad = utf8(JSON.stringify(['chatd-e2e-v2', context.threadId, context.clientMsgId, sender.userId, sender.deviceId]));
      const ciphertext = b64(sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(utf8(JSON.stringify(body)), ad, null, raw(nonce), derive('chatd-e2e-v2-aead', encryptWith)));
      const keys = Object.fromEntries(recipients.map((r) => [String(r.deviceId), b64(sodium.crypto_box_seal(keyFor(r.deviceId), raw(r.encKey)))]));
      const signed = JSON.stringify([
        'chatd-e2e-v2', context.threadId, context.clientMsgId, sender.userId, sender.deviceId, nonce, commit, ciphertext,
        Object.keys(keys).sort().map((id) => [id, keys[id]]),
      ]);
      return { v: 2, sender_device: sender.deviceId, nonce, commit, ciphertext, keys, signature: b64(sodium.crypto_sign_detached(utf8(signed), sender.signSecret)) };
    }

    it('one signed envelope with different message keys sealed to bob and to carol never opens ok to both: the key commitment gives one of them bad_signature or undecryptable', async () => {
      const [malloryName, bobName, carolName] = [await user('mallory'), await user('bob'), await user('carol')];
      const [bob, carol] = [await device(bobName), await device(carolName)];
      const mallory = await rawDevice(malloryName);
      const malloryDevice = await approvedDevice(mallory.socket, mallory.userId, mallory.deviceId, new TestAccount(mallory.userId));
      const group = (await mallory.socket.expect({ type: 'group_create', title: 'vote', members: [bobName, carolName] }, 'thread')).thread.id as number;
      const { devices } = await mallory.socket.expect({ type: 'keys_get', user_ids: [mallory.userId, bob.userId, carol.userId] }, 'keys');
      const recipients = devices
        .filter((d: { revoked: boolean; account_signature: string | null }) => !d.revoked && d.account_signature)
        .map((d: { device_id: number; enc_key: string }) => ({ deviceId: d.device_id, encKey: d.enc_key }));
      const [k1, k2] = [sodium.randombytes_buf(32), sodium.randombytes_buf(32)];
      const toCarolK2 = (deviceId: number): Uint8Array => (deviceId === carol.deviceId ? k2 : k1);
      const variants = [
        // Committed to K1 (bob's): carol's K2 does not match the commitment.
        { clientMsgId: 'two-faced-1', body: { text: 'YES, I vote for it' }, commitTo: k1 },
        // Committed to K2 (carol's) but encrypted under K1: bob's key does not match, carol's does not decrypt.
        { clientMsgId: 'two-faced-2', body: { text: 'NO, I vote against' }, commitTo: k2 },
      ];
      for (const variant of variants) {
        const body = twoFacedEnvelope(malloryDevice, { threadId: group, clientMsgId: variant.clientMsgId }, variant.body, toCarolK2, k1, variant.commitTo, recipients);
        await mallory.socket.expect({ type: 'send', thread_id: group, client_msg_id: variant.clientMsgId, kind: 'e2e', body }, 'ack');
      }
      for (const variant of variants) {
        const [atBob, atCarol] = await Promise.all([bob, carol].map((peer) => peer.until(() => peer.messages.find((m) => m.client_msg_id === variant.clientMsgId), variant.clientMsgId)));
        const statuses = [atBob?.e2e?.status, atCarol?.e2e?.status];
        assert.ok(!statuses.every((status) => status === 'ok'), `${variant.clientMsgId}: both ok (${statuses.join(', ')})`);
        assert.ok(statuses.some((status) => status === 'bad_signature' || status === 'undecryptable'), statuses.join(', '));
        assert.equal(statuses.filter((status) => status === 'ok').length <= 1, true);
      }
      assert.deepEqual(
        [bob, carol].map((peer) => variants.map((v) => peer.messages.find((m) => m.client_msg_id === v.clientMsgId)?.e2e?.status)),
        [['ok', 'bad_signature'], ['bad_signature', 'undecryptable']],
      );
      for (const variant of variants) assertNowhere(variant.body.text);
    });
  });

  describe("a contact's account key substituted", () => {
    it('in the database, seen at a restart: identity changed; for a verified contact sends are held, not sent, until acceptIdentity', async () => {
      const [aliceName, bobName, carolName] = [await user('alice'), await user('bob'), await user('carol')];
      const [alice, bob] = [await device(aliceName), await device(bobName)];
      await device(carolName);
      const thread = await alice.client.openDirect(bobName);
      const other = await alice.client.openDirect(carolName);
      await alice.client.send(thread.id, { text: 'hello bob' }, { encrypted: true });
      await bob.text(thread.id, 'hello bob');
      const before = await alice.client.safetyNumber(bob.userId);
      await alice.client.markVerified(bob.userId);

      const attacker = new TestAccount(bob.userId);
      const real = db.prepare('SELECT account_key, signature FROM account_keys WHERE user_id = ?').get(bob.userId) as { account_key: string; signature: string };
      const forged = attacker.publication();
      db.prepare('UPDATE account_keys SET account_key = ?, signature = ? WHERE user_id = ?').run(forged.account_key, forged.signature, bob.userId);
      const restarted = await restart(alice);
      const change = await restarted.until(() => restarted.identities.find((i) => i.user_id === bob.userId && i.reason === 'changed'), 'identity changed');
      assert.deepEqual([change.verified, change.held], [true, true]);
      assert.equal((await restarted.client.safetyNumber(bob.userId)).number, before.number, 'the pinned key stays until accepted');

      const secret = 'held-secret: for the real bob only';
      const held = restarted.client.send(thread.id, { text: secret }, { encrypted: true });
      held.catch(() => {});
      // A send to another thread goes out: the outbox ran, and the held one stayed.
      await restarted.client.send(other.id, { text: 'to carol meanwhile' }, { encrypted: true });
      assert.deepEqual(restarted.client.pending().map((entry) => entry.thread_id), [thread.id]);
      assert.equal(db.prepare('SELECT count(*) FROM messages WHERE thread_id = ?').pluck().get(thread.id), 1, 'nothing sent while held');
      assert.equal(restarted.statuses.some((s) => s.thread_id === thread.id && s.status !== 'pending'), false);

      // Accepting the new key releases the send; bob's real devices are not certified by it, so it fails (untrusted_devices).
      await restarted.client.acceptIdentity(bob.userId);
      await assert.rejects(held, { code: 'untrusted_devices' });
      assert.equal((await restarted.client.safetyNumber(bob.userId)).verified, false);
      assertNowhere(secret);
      db.prepare('UPDATE account_keys SET account_key = ?, signature = ? WHERE user_id = ?').run(real.account_key, real.signature, bob.userId);
    });

    it('by a man in the middle injecting account_changed: the same hold; the pinned key reported again releases it, still verified', async () => {
      const [aliceName, bobName, carolName] = [await user('alice'), await user('bob'), await user('carol')];
      const relay = await mitm();
      const [alice, bob] = [await device(aliceName, { via: relay }), await device(bobName)];
      await device(carolName);
      const thread = await alice.client.openDirect(bobName);
      const other = await alice.client.openDirect(carolName);
      await alice.client.send(thread.id, { text: 'hello bob' }, { encrypted: true });
      await bob.text(thread.id, 'hello bob');
      await alice.client.markVerified(bob.userId);
      const honest = (await relay.until((f) => f.type === 'keys' && f.accounts?.some((a: { user_id: number }) => a.user_id === bob.userId))).accounts
        .find((a: { user_id: number }) => a.user_id === bob.userId);
      const attacker = new TestAccount(bob.userId);
      relay.links.at(-1)?.toClient({ type: 'account_changed', user_id: bob.userId, ...attacker.publication() });
      const change = await alice.until(() => alice.identities.find((i) => i.user_id === bob.userId && i.reason === 'changed'), 'identity changed');
      assert.deepEqual([change.verified, change.held], [true, true]);
      const secret = 'mitm-held-secret: for the real bob only';
      const held = alice.client.send(thread.id, { text: secret }, { encrypted: true });
      await alice.client.send(other.id, { text: 'to carol meanwhile' }, { encrypted: true });
      const heldId = alice.client.pending().find((entry) => entry.thread_id === thread.id)?.client_msg_id;
      assert.ok(heldId, 'the message waits in the outbox');
      assert.equal(relay.frames().some((f) => f.type === 'send' && f.client_msg_id === heldId), false, 'not sent while held');
      // The server reports the pinned key again: the hold is lifted without accepting anything.
      relay.links.at(-1)?.toClient({ type: 'account_changed', ...honest });
      await held;
      assert.equal((await bob.text(thread.id, secret)).e2e?.status, 'ok');
      assert.equal((await alice.client.safetyNumber(bob.userId)).verified, true, 'still verified: the key never changed');
      assertNowhere(secret, relay);
    });
  });

  describe('the limit: trust on first use', () => {
    it('an account key served before first contact is trusted: the attacker reads what is sealed to its device, and only the safety numbers, which differ, show it', async () => {
      const [aliceName, bobName] = [await user('alice'), await user('bob')];
      const bob = await device(bobName);
      const attacker = new TestAccount(bob.userId);
      const ghost = new TestDevice(bob.userId, 900_000 + names);
      const ghostEntry = ghost.entry(attacker.certify(ghost));
      const relay = await mitm();
      // From alice's very first connection, every answer about bob names the attacker's account key and device.
      relay.rewrite = (frame, link, direction) => {
        if (direction !== 'down') return frame;
        if (frame.type === 'account_changed' && frame.user_id === bob.userId) return null;
        if (link.answers(frame) === 'keys_get' && frame.accounts.some((a: { user_id: number }) => a.user_id === bob.userId)) {
          frame.accounts = frame.accounts.map((a: { user_id: number }) => (a.user_id === bob.userId ? { user_id: bob.userId, ...attacker.publication() } : a));
          frame.devices = [...frame.devices, ghostEntry];
        }
        return frame;
      };
      const alice = await device(aliceName, { via: relay });
      const thread = await alice.client.openDirect(bobName);
      const secret = 'tofu-secret: read by whoever the server says bob is';
      await assert.rejects(alice.client.send(thread.id, { text: secret }, { encrypted: true }), { code: 'untrusted_devices' });
      const first = await alice.until(() => alice.identities.find((i) => i.user_id === bob.userId), 'identity new');
      assert.deepEqual([first.reason, first.verified], ['new', false]);
      // The attacker opened the key sealed to its device in the send frame it relayed (the server then refused the send).
      const send = relay.frames().find((f) => f.type === 'send' && f.thread_id === thread.id);
      assert.equal(opensWith(send.body.keys[String(ghost.deviceId)], { public: ghost.encKey, secret: b64(ghost.encSecret) }), true);
      // What shows it: the safety numbers on the two phones differ.
      const [atAlice, atBob] = [await alice.client.safetyNumber(bob.userId), await bob.client.safetyNumber(alice.userId)];
      assert.notEqual(atAlice.number, atBob.number);
      assert.equal(await bob.client.verifyQr(alice.userId, atAlice.qr), false, "bob's scan of alice's code fails");
    });
  });

  describe('the limit: a brand-new device', () => {
    it("takes its account's key from the server at its first connect: a server serving its own makes the device part of a fake account; the real devices never see it approved, and the safety numbers differ", async () => {
      const [aliceName, bobName] = [await user('alice'), await user('bob')];
      const [alice1, bob] = [await device(aliceName), await device(bobName)];
      const thread = await alice1.client.openDirect(bobName);
      await alice1.client.send(thread.id, { text: 'hi bob' }, { encrypted: true });
      await bob.text(thread.id, 'hi bob');
      const attacker = new TestAccount(alice1.userId);
      const ghost = new TestDevice(alice1.userId, 910_000 + names);
      const ghostEntry = ghost.entry(attacker.certify(ghost));
      const relay = await mitm();
      relay.rewrite = (frame, link, direction) => {
        if (direction !== 'down') return frame;
        if (frame.type === 'account_changed' && frame.user_id === alice1.userId) return null;
        if (link.answers(frame) === 'keys_get' && frame.accounts.some((a: { user_id: number }) => a.user_id === alice1.userId)) {
          frame.accounts = frame.accounts.map((a: { user_id: number }) => (a.user_id === alice1.userId ? { user_id: alice1.userId, ...attacker.publication() } : a));
          frame.devices = [...frame.devices, ghostEntry];
        }
        // The real server refuses the fake certificate; the attacker answers ok in its place.
        if (frame.type === 'error' && link.answers(frame) === 'keys_publish') return { type: 'ok', id: frame.id };
        return frame;
      };
      const alice2 = await device(aliceName, { via: relay });
      assert.equal(alice2.accountStandings[0]?.state, 'pending');
      // The attacker's "approved device" hands the new device the attacker's account key.
      const published = await relay.until((f) => f.type === 'keys_publish');
      const body = { account_key: attacker.key, account_secret: b64(attacker.secretKey) };
      const [msgId, sentAt] = [b64(sodium.randombytes_buf(16)), Date.now()];
      const signed = JSON.stringify(['chatd-device-msg-v2', alice1.userId, ghost.deviceId, alice2.deviceId, 'account_key', msgId, sentAt, JSON.stringify(body)]);
      const inner = { v: 2, from_device: ghost.deviceId, to_device: alice2.deviceId, kind: 'account_key', msg_id: msgId, sent_at: sentAt, body, signature: b64(sodium.crypto_sign_detached(utf8(signed), ghost.signSecret)) };
      const payload = b64(sodium.crypto_box_seal(utf8(JSON.stringify(inner)), raw(published.enc_key)));
      relay.links.at(-1)?.toClient({ type: 'device_message', message: { id: 1_000_000, from_device: ghost.deviceId, payload, created_at: Date.now() } });
      await alice2.until(() => alice2.accountStandings.find((s) => s.state === 'approved'), 'approved by the fake account');
      // Its sends are sealed to the attacker's device (the real server refuses them: the device is not approved there).
      const secret = 'new-device-secret: sealed to a fake own device';
      await assert.rejects(alice2.client.send(thread.id, { text: secret }, { encrypted: true }));
      const send = relay.frames().find((f) => f.type === 'send' && f.thread_id === thread.id);
      assert.equal(opensWith(send.body.keys[String(ghost.deviceId)], { public: ghost.encKey, secret: b64(ghost.encSecret) }), true);
      // What shows it: the real device lists the new one as pending (and was asked to approve it), and the safety numbers differ.
      const listed = await alice1.client.devices();
      assert.equal(listed.find((d) => d.device_id === alice2.deviceId)?.state, 'pending');
      assert.ok(alice1.deviceRequests.some((r) => r.device_id === alice2.deviceId));
      const [fromNew, atBob] = [await alice2.client.safetyNumber(bob.userId), await bob.client.safetyNumber(alice1.userId)];
      assert.notEqual(fromNew.number, atBob.number);
    });
  });

  describe('a removed member', () => {
    it('gets no message key for what is sent after the removal; what it had stays readable to it', async () => {
      const [aliceName, bobName, carolName] = [await user('alice'), await user('bob'), await user('carol')];
      const [alice, bob, carol] = [await device(aliceName), await device(bobName), await device(carolName)];
      const group = await alice.client.createGroup('three', [bobName, carolName]);
      await alice.client.send(group.id, { text: 'while carol is in' }, { encrypted: true });
      assert.equal((await carol.text(group.id, 'while carol is in')).e2e?.status, 'ok');
      await alice.client.removeMember(group.id, carolName);
      const secret = 'removed-secret: after carol left';
      await alice.client.send(group.id, { text: secret }, { encrypted: true });
      assert.equal((await bob.text(group.id, secret)).e2e?.status, 'ok');
      const envelopes = storedEnvelopes(group.id);
      assert.deepEqual(Object.keys(envelopes[0]?.keys ?? {}).map(Number).includes(carol.deviceId), true);
      assert.equal(envelopes.at(-1)?.keys[String(carol.deviceId)], undefined, 'no key sealed to the removed member');
      assert.equal(carol.messages.some((m) => (m.body as { text?: string })?.text === secret), false);
      const page = await carol.client.history(group.id).catch((error: { code?: string }) => error);
      assert.ok(!('messages' in page) || page.messages.every((m) => (m.body as { text?: string })?.text !== secret));
      assertNowhere(secret);
    });
  });

  // A restart of an encrypted client on a FileStore (no key event at peers, its own history ok) is in
  // e2e.test.ts: "a restart on a FileStore keeps the identity: peers get no key event and the device's own history reads ok".

  describe('bad input from a malicious peer', () => {
    it('a malformed key bundle is refused by the server by field and stores nothing; one the server slips in anyway is reported (bad_reply) and changes nothing the client stores', async () => {
      const [aliceName, bobName] = [await user('alice'), await user('bob')];
      const relay = await mitm();
      const path = join(tempDir(), 'alice.json');
      const alice = await device(aliceName, { via: relay, store: new FileStore(path) });
      const bob = await rawDevice(bobName);
      await bob.socket.expect({ type: 'direct_open', username: aliceName }, 'thread');
      const keysRow = () => db.prepare('SELECT enc_key, sign_key, key_counter, key_signature, account_signature FROM devices WHERE id = ?').get(bob.deviceId);
      const rowBefore = keysRow();
      const bundle = new TestDevice(bob.userId, bob.deviceId);
      const good = bundle.publication() as Record<string, unknown>;
      const other = new TestDevice(bob.userId, bob.deviceId).publication() as { signature: string };
      for (const [frame, field] of [
        [{ ...good, signature: other.signature }, 'signature'],
        [{ ...good, enc_key: Buffer.alloc(31, 7).toString('base64') }, 'enc_key'],
        [{ ...good, counter: -1 }, 'counter'],
      ] as const) {
        const reply = await bob.socket.expect({ type: 'keys_publish', ...frame }, 'error');
        assert.deepEqual([reply.error.code, reply.error.field], ['invalid_field', field]);
      }
      assert.deepEqual(keysRow(), rowBefore, 'the server stored nothing');

      await alice.store.flush();
      const stored = storedE2e(path);
      const errorsBefore = alice.errors.length;
      const link = relay.links.at(-1);
      link?.toClient({ type: 'keys_changed', ...bundle.entry(null), signature: other.signature });
      link?.toClient({ type: 'keys_changed', ...bundle.entry(null), enc_key: Buffer.alloc(31, 7).toString('base64') });
      link?.toClient({ type: 'account_changed', user_id: bob.userId, ...new TestAccount(bob.userId).publication(bob.userId + 1) });
      await alice.until(() => (alice.errors.length >= errorsBefore + 3 ? true : undefined), 'three refusals');
      const refusals = alice.errors.slice(errorsBefore);
      assert.deepEqual(refusals.map((e) => (e as { code?: string }).code), ['bad_reply', 'bad_reply', 'bad_reply']);
      assert.match(refusals[0]?.message ?? '', new RegExp(`device ${bob.deviceId}'s keys are not signed by its own signing key`));
      assert.match(refusals[2]?.message ?? '', /account key is not signed by itself/);
      assert.deepEqual(alice.keys.filter((k) => k.user_id === bob.userId), []);
      await alice.store.flush();
      assert.deepEqual(storedE2e(path), stored, "the client's store is unchanged");
    });

    it('device messages not sealed to this device, not JSON, from a device the account key never approved, addressed elsewhere, a malformed history part, or a foreign account secret are refused (bad_reply) and change nothing stored', async () => {
      const aliceName = await user('alice');
      const path = join(tempDir(), 'alice.json');
      const alice = await device(aliceName, { store: new FileStore(path) });
      const peer = await rawDevice(aliceName);
      const peerDevice = new TestDevice(peer.userId, peer.deviceId);
      await peer.socket.expect({ type: 'keys_publish', ...peerDevice.publication() }, 'ok');
      await alice.client.devices();
      const request = await alice.until(() => alice.deviceRequests.find((r) => r.device_id === peer.deviceId), 'device_request');
      const { devices } = await peer.socket.expect({ type: 'keys_get', user_ids: [peer.userId] }, 'keys');
      const aliceEnc = raw(devices.find((d: { device_id: number }) => d.device_id === alice.deviceId).enc_key);
      const inner = (kind: string, body: unknown, to = alice.deviceId): Record<string, unknown> => {
        const [msgId, sentAt] = [b64(sodium.randombytes_buf(16)), Date.now()];
        const signed = JSON.stringify(['chatd-device-msg-v2', peer.userId, peer.deviceId, to, kind, msgId, sentAt, JSON.stringify(body)]);
        return { v: 2, from_device: peer.deviceId, to_device: to, kind, msg_id: msgId, sent_at: sentAt, body, signature: b64(sodium.crypto_sign_detached(utf8(signed), peerDevice.signSecret)) };
      };
      const sealed = (value: unknown): string => b64(sodium.crypto_box_seal(utf8(typeof value === 'string' ? value : JSON.stringify(value)), aliceEnc));
      const historyGrant = { grant_id: 'g-1', part: 0, parts: 1, keys: [[1, 1, b64(sodium.randombytes_buf(32))]] };
      await alice.store.flush();
      const stored = storedE2e(path);
      const send = async (payload: string): Promise<void> => {
        await peer.socket.expect({ type: 'device_send', device_id: alice.deviceId, payload }, 'ok');
      };
      const refusedCount = (): number => alice.errors.filter((e) => e.message.includes(`from device ${peer.deviceId} refused`)).length;
      // While the peer is pending the server takes nothing from it (the SDK's refusal of such a sender: test/unit/e2e-mailbox.test.ts).
      const fromPending = await peer.socket.expect({ type: 'device_send', device_id: alice.deviceId, payload: sealed(inner('history', historyGrant)) }, 'error');
      assert.equal(fromPending.error.code, 'forbidden');
      // Approved now (the user compared the code), it turns bad: garbage, not JSON, a message addressed to another device, and a foreign account secret.
      await alice.client.approveDevice(peer.deviceId, { fingerprint: request.fingerprint });
      const grant = await peer.socket.nextEvent('device_message');
      const opened = JSON.parse(Buffer.from(sodium.crypto_box_seal_open(raw(grant.message.payload), peerDevice.encPublic, peerDevice.encSecret)).toString('utf8'));
      assert.equal(opened.kind, 'account_key');
      await alice.store.flush();
      const approvedStore = storedE2e(path);
      await send(b64(sodium.randombytes_buf(120)));
      await send(sealed('{not json'));
      await alice.until(() => (refusedCount() >= 2 ? true : undefined), 'two refusals');
      assert.match(alice.errors.find((e) => e.message.includes(`from device ${peer.deviceId} refused`))?.message ?? '', /not sealed to this device/);
      await send(sealed(inner('history', historyGrant, alice.deviceId + 1000)));
      await alice.until(() => (refusedCount() >= 3 ? true : undefined), 'the misaddressed one');
      assert.match(alice.errors.filter((e) => e.message.includes('refused')).at(-1)?.message ?? '', /addressed to another device/);
      // A history part from an approved device, malformed (grant_id too short): refused by the history module.
      await send(sealed(inner('history', historyGrant)));
      const malformed = await alice.until(() => alice.errors.find((e) => e.message.includes(`a history part from device ${peer.deviceId} was refused`)), 'the refused history part');
      assert.equal((malformed as { code?: string }).code, 'bad_reply');
      assert.match(malformed.message, /grant_id/);
      const before = alice.errors.length;
      await send(sealed(inner('account_key', { account_key: opened.body.account_key, account_secret: b64(sodium.randombytes_buf(64)) })));
      const foreign = await alice.until(() => alice.errors.slice(before).find((e) => /account key grant/.test(e.message)), 'the refused grant');
      assert.equal((foreign as { code?: string }).code, 'bad_reply');
      await alice.store.flush();
      const after = storedE2e(path);
      // Only the ids of those that opened and verified (so that a replay is recognised): the malformed part's, and the
      // foreign grant's once its refusal is done with (recorded just after the error it reports).
      const seen = Object.keys(after.deviceMessagesSeen ?? {}).length;
      assert.ok(seen >= 1 && seen <= 2, `ids kept: ${seen}`);
      assert.deepEqual({ ...after, deviceMessagesSeen: undefined }, { ...approvedStore, deviceMessagesSeen: undefined }, 'nothing else stored from any of them');
      assert.equal(after.historyKeys, undefined);
      // The approval pinned a device and settled its grant (owedGrants: []); nothing else changed.
      const mark = { knownDevices: undefined, deviceMessagesSeen: undefined, owedGrants: undefined };
      assert.deepEqual({ ...after, ...mark }, { ...stored, ...mark }, 'only the approval itself pinned a device');
    });
  });
});
