import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import {
  AccountApi, ChatClient, type ClientMessage, type ClientStore, FileStore, type IdentityChange, type KeyChange, MemoryStore, type StatusChange,
} from '../../src/client/node.js';
import { TestAccount, TestDevice, approvedDevice, loadSodium } from '../helpers/e2e.js';
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
class Peer {
  readonly messages: ClientMessage[] = [];
  readonly keys: KeyChange[] = [];
  readonly identities: IdentityChange[] = [];
  readonly errors: Error[] = [];
  readonly deviceRequests: Array<{ device_id: number; fingerprint: string }> = [];
  readonly statuses: StatusChange[] = [];
  private readonly waiters = new Set<() => void>();

  constructor(
    readonly client: ChatClient,
    readonly username: string,
    readonly token: string,
    readonly store: ClientStore,
  ) {
    const track = <T>(list: T[]) => (value: T): void => {
      list.push(value);
      for (const waiter of [...this.waiters]) waiter();
    };
    client.on('message', track(this.messages));
    client.on('keys', track(this.keys));
    client.on('identity', track(this.identities));
    client.on('error', track(this.errors));
    client.on('device_request', track(this.deviceRequests));
    client.on('status', track(this.statuses));
  }

  get userId(): number {
    return (this.client.user as { id: number }).id;
  }

  get deviceId(): number {
    return this.client.deviceId as number;
  }

  until<T>(find: () => T | undefined, what = 'an event'): Promise<T> {
    const found = find();
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`${this.username}: no ${what} within 10 s; errors: ${this.errors.map((e) => e.message).join(' | ')}`));
      }, 10_000);
      const check = (): void => {
        const value = find();
        if (value === undefined) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(value);
      };
      this.waiters.add(check);
    });
  }

  /** The message of the thread whose decrypted text is `text`. */
  text(threadId: number, text: string): Promise<ClientMessage> {
    return this.until(() => this.messages.find((m) => m.thread_id === threadId && (m.body as { text?: string })?.text === text), `message "${text}"`);
  }

  /** The next e2e message of the thread after seq `after` (opened or not). */
  encryptedAfter(threadId: number, after: number): Promise<ClientMessage> {
    return this.until(() => this.messages.find((m) => m.thread_id === threadId && m.kind === 'e2e' && m.seq > after), `an e2e message after seq ${after}`);
  }

  errorCoded(code: string): Promise<Error> {
    return this.until(() => this.errors.find((e) => (e as { code?: string }).code === code), `error ${code}`);
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
    const fields = ['deviceSecrets', 'account', 'knownDevices', 'accounts', 'e2eThreads', 'historyKeys', 'grants'];
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
});
