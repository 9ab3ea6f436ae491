import { randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  AccountApi, ChatClient, type ChatClientOptions, FileStore, type HistoryReceived, MemoryStore,
} from '../../src/client/node.js';
import type { HistoryHost } from '../../src/client/history-hook.js';
import { ClientEvents } from '../helpers/client-events.js';
import { TestDevice, loadSodium } from '../helpers/e2e.js';
import { type ServerProcess, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { connectAuthenticated } from '../helpers/ws.js';

/**
 * History for a new device (docs/e2e.md) over the real server: a pending
 * device reads nothing of the past; once approved and given a share it reads
 * the old messages from the ciphertext the server stores; a share cut short
 * continues after a restart; forged and wrong parts are refused.
 */

/** What one client hands the app, waited on by event. */
class Watch extends ClientEvents {
  /** The states of its `account` events. */
  get accounts(): string[] {
    return this.standings;
  }

  /** The last `history` event once a grant is complete. */
  complete(grantId?: string): Promise<HistoryReceived> {
    return this.until(() => this.history.find((h) => (grantId === undefined || h.grant_id === grantId) && h.parts_received === h.parts), `grant ${grantId ?? '(any)'} complete`);
  }
}

type Device = Watch & { token: string; deviceId: number; store: MemoryStore | FileStore };

describe('history for a new device', { timeout: 120_000 }, () => {
  let server: ServerProcess;
  const clients: ChatClient[] = [];
  let names = 0;

  before(async () => {
    await loadSodium();
    const module = (await import('libsodium-wrappers')) as { default?: unknown };
    sodium = (module.default ?? module) as RawSodium;
    const dir = tempDir();
    server = await startServer(['--data', join(dir, 'data'), '--config', writeConfig(dir, '[accounts]\nregistration = "open"\n[rate_limit]\nlogin_per_address = 100000\n')]);
  });
  after(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await server.stop();
  });

  async function user(prefix: string): Promise<{ name: string; id: number }> {
    const name = `${prefix}${++names}`;
    const registered = await new AccountApi(server.url).register({ username: name, password: 'correct horse' });
    return { name, id: registered.user.id };
  }

  function start(token: string, deviceId: number, store: MemoryStore | FileStore, options: Partial<ChatClientOptions> = {}): Promise<Device> {
    const client = new ChatClient({ server: server.url, token, store, encryption: true, reconnect: { initialDelayMs: 50, maxDelayMs: 400 }, ...options });
    clients.push(client);
    const watch = new Watch(client);
    return client.start().then(() => client.whenOnline()).then(() => Object.assign(watch, { token, deviceId, store }));
  }

  async function device(username: string, options: Partial<ChatClientOptions> & { store?: MemoryStore | FileStore } = {}): Promise<Device> {
    const login = await new AccountApi(server.url).login({ username, password: 'correct horse', device_name: 'history test', platform: 'bot' });
    const d = await start(login.token, login.device.id, options.store ?? new MemoryStore(), options);
    await d.until(() => d.accounts[0]);
    return d;
  }

  async function approve(by: Device, next: Device): Promise<void> {
    await by.client.approveDevice(next.deviceId, { fingerprint: next.client.ownFingerprint() });
    await next.until(() => next.accounts.find((state) => state === 'approved'));
  }

  /** The thread's e2e messages as this device reads them now: [text or null, status, via]. */
  async function read(d: Device, threadId: number): Promise<Array<[string | null, string | undefined, string | undefined]>> {
    const page = await d.client.history(threadId, 'latest', 200);
    return page.messages.filter((m) => m.kind === 'e2e').map((m) => [m.e2e?.status === 'ok' ? ((m.body as { text?: string }).text ?? null) : null, m.e2e?.status, m.e2e?.via]);
  }

  it('a pending device reads nothing of the past; approved and given a share, it reads the old history via history; another approved device without a share does not', async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const [a1, b1] = [await device(alice.name), await device(bob.name)];
    const direct = await a1.client.openDirect(bob.name);
    await a1.client.send(direct.id, { text: 'direct from alice' }, { encrypted: true });
    await b1.client.send(direct.id, { text: 'direct from bob' }, { encrypted: true });
    const group = await a1.client.createGroup('club', [bob.name], { e2eRequired: true });
    await a1.client.send(group.id, { text: 'group from alice' });
    await b1.client.send(group.id, { text: 'group from bob' });
    for (const [thread, text] of [[direct.id, 'direct from bob'], [group.id, 'group from bob']] as const) assert.equal((await a1.text(thread, text)).e2e?.status, 'ok');

    const a2 = await device(alice.name);
    assert.deepEqual(a2.accounts, ['pending']);
    await a1.client.send(direct.id, { text: 'while the phone waits' }, { encrypted: true });
    await b1.text(direct.id, 'while the phone waits');
    for (const thread of [direct.id, group.id]) {
      const page = await a2.client.history(thread, 'latest', 200);
      const encrypted = page.messages.filter((m) => m.kind === 'e2e');
      assert.ok(encrypted.length >= 2);
      for (const m of encrypted) {
        assert.equal(m.e2e?.status, 'undecryptable');
        assert.equal((m.body as { keys: Record<string, string> }).keys[String(a2.deviceId)], undefined, 'nothing was sealed to the pending device');
      }
    }
    await assert.rejects(a1.client.shareHistory(a2.deviceId), { code: 'not_found' }, 'no history for a device that is not approved');

    await approve(a1, a2);
    const shared = await a1.client.shareHistory(a2.deviceId);
    assert.deepEqual([shared.messages, shared.truncated], [5, false]);
    const done = await a2.complete(shared.grant_id);
    assert.equal(done.from_device, a1.deviceId);
    assert.equal(done.messages, 5);
    assert.deepEqual(a1.progress.map((p) => [p.to_device, p.grant_id, p.part, p.parts]), [[a2.deviceId, shared.grant_id, 1, 1]]);
    assert.deepEqual(await read(a2, direct.id), [
      ['direct from alice', 'ok', 'history'], ['direct from bob', 'ok', 'history'], ['while the phone waits', 'ok', 'history'],
    ]);
    assert.deepEqual(await read(a2, group.id), [['group from alice', 'ok', 'history'], ['group from bob', 'ok', 'history']]);
    // A new message after the approval is sealed to the new device itself.
    await b1.client.send(direct.id, { text: 'hello new phone' }, { encrypted: true });
    assert.equal((await a2.text(direct.id, 'hello new phone')).e2e?.via, 'sealed');

    const a3 = await device(alice.name);
    await approve(a2, a3);
    assert.deepEqual((await read(a3, direct.id)).map(([, status]) => status), ['undecryptable', 'undecryptable', 'undecryptable', 'undecryptable']);
    assert.deepEqual(a3.history, []);
  });

  it('history shared by a device revoked before the new device fetched it is still taken (each key checked against the stored message it opens)', async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const [a1, b1] = [await device(alice.name), await device(bob.name)];
    const direct = await a1.client.openDirect(bob.name);
    await b1.client.send(direct.id, { text: 'before the new phone' }, { encrypted: true });
    await a1.text(direct.id, 'before the new phone');
    const a2 = await device(alice.name);
    const fingerprint = a2.client.ownFingerprint();
    await a2.client.close();
    // The old phone approves the new one and shares history while the new one is offline, then is revoked (sold).
    await a1.client.approveDevice(a2.deviceId, { fingerprint });
    const shared = await a1.client.shareHistory(a2.deviceId);
    assert.equal(shared.messages, 1);
    await a1.client.close();
    await new AccountApi(server.url, a1.token).logout();
    const back = await start(a2.token, a2.deviceId, a2.store);
    const deadline = <T>(promise: Promise<T>, what: string): Promise<T> =>
      Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`waited 15 s for ${what}`)), 15_000).unref())]);
    await deadline(back.until(() => back.accounts.find((state) => state === 'approved')), 'the approval');
    const done = await deadline(back.complete(shared.grant_id), 'the shared history');
    assert.equal(done.from_device, a1.deviceId);
    assert.deepEqual(await read(back, direct.id), [['before the new phone', 'ok', 'history']]);
  });

  it('a share with a choice of threads and a time carries only those messages', async () => {
    const [alice, bob, carol] = [await user('alice'), await user('bob'), await user('carol')];
    const a1 = await device(alice.name);
    const withBob = await a1.client.openDirect(bob.name);
    const withCarol = await a1.client.openDirect(carol.name);
    await a1.client.send(withBob.id, { text: 'old' }, { encrypted: true });
    const sent = await a1.client.send(withBob.id, { text: 'new' }, { encrypted: true });
    await a1.client.send(withCarol.id, { text: 'to carol' }, { encrypted: true });
    const since = (await a1.client.history(withBob.id)).messages.find((m) => m.seq === sent.seq)?.created_at as number;
    const a2 = await device(alice.name);
    await approve(a1, a2);
    const shared = await a1.client.shareHistory(a2.deviceId, { threads: [withBob.id], since });
    assert.equal(shared.messages, 1);
    await a2.complete(shared.grant_id);
    assert.deepEqual(await read(a2, withBob.id), [[null, 'undecryptable', undefined], ['new', 'ok', 'history']]);
    assert.deepEqual(await read(a2, withCarol.id), [[null, 'undecryptable', undefined]]);
  });

  it('a grant is bounded by maxHistoryMessages: the newest messages are shared and the result says it was cut', async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const a1 = await device(alice.name, { maxHistoryMessages: 2 });
    const thread = await a1.client.openDirect(bob.name);
    for (const text of ['oldest', 'middle', 'newest']) await a1.client.send(thread.id, { text }, { encrypted: true });
    const a2 = await device(alice.name);
    await approve(a1, a2);
    const shared = await a1.client.shareHistory(a2.deviceId);
    assert.deepEqual([shared.messages, shared.truncated], [2, true]);
    assert.ok(a1.errors.some((e) => /stops at the newest 2 messages/.test(e.message)));
    assert.equal((await a2.complete(shared.grant_id)).messages, 2);
    assert.deepEqual((await read(a2, thread.id)).map(([text, status]) => [text, status]), [[null, 'undecryptable'], ['middle', 'ok'], ['newest', 'ok']]);
  });

  it('a share cut short after its first part continues after a restart (FileStore) and completes; the receiver ignores a part sent twice', async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const path = join(tempDir(), 'alice.json');
    const small = { historyPartBytes: 256 };
    const a1 = await device(alice.name, { store: new FileStore(path), ...small });
    const thread = await a1.client.openDirect(bob.name);
    const texts = Array.from({ length: 7 }, (_, i) => `message ${i + 1}`);
    for (const text of texts) await a1.client.send(thread.id, { text }, { encrypted: true });
    const a2 = await device(alice.name);
    await approve(a1, a2);

    a1.client.on('history_progress', () => void a1.client.close());
    await assert.rejects(a1.client.shareHistory(a2.deviceId), { code: 'closed' });
    assert.deepEqual(a1.progress.map((p) => [p.part, p.parts]), [[1, 4]]);
    const first = await a2.until(() => a2.history[0]);
    assert.deepEqual([first.parts_received, first.parts, first.messages], [1, 4, 2]);

    const again = await start(a1.token, a1.deviceId, new FileStore(path), small);
    const done = await a2.complete(first.grant_id);
    assert.deepEqual([done.parts_received, done.parts, done.messages], [4, 4, 7]);
    await again.until(() => again.progress.find((p) => p.part === 4));
    assert.deepEqual(again.progress.map((p) => [p.grant_id, p.part, p.parts]), [2, 3, 4].map((part) => [first.grant_id, part, 4]), 'it went on from part 2');
    assert.deepEqual((await read(a2, thread.id)).map(([text, status]) => [text, status]), texts.map((text) => [text, 'ok']));
    // Asking again for the same choice does not begin another grant: the one done is not sent twice, a new one is made.
    const repeat = await again.client.shareHistory(a2.deviceId);
    assert.notEqual(repeat.grant_id, first.grant_id);
    await a2.complete(repeat.grant_id);
    assert.equal(a2.history.filter((h) => h.grant_id === first.grant_id).length, 4, 'each part of the first grant counted once');
  });

  it('history parts are refused from a pending device of the same user, and keys that do not open the stored message are refused one by one', async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const a1 = await device(alice.name);
    const thread = await a1.client.openDirect(bob.name);
    for (const text of ['one', 'two']) await a1.client.send(thread.id, { text }, { encrypted: true });
    const a2store = new MemoryStore();
    const a2 = await device(alice.name, { store: a2store });
    await approve(a1, a2);

    // A raw device of alice's, pending (never approved), seals and signs a history part to a2 properly.
    const login = await new AccountApi(server.url).login({ username: alice.name, password: 'correct horse', device_name: 'raw', platform: 'bot' });
    const raw = await connectAuthenticated(server.wsUrl, login.token);
    const forger = new TestDevice(alice.id, login.device.id);
    await raw.socket.expect({ type: 'keys_publish', ...forger.publication() }, 'ok');
    const { devices } = await raw.socket.expect({ type: 'keys_get', user_ids: [alice.id] }, 'keys');
    const target = devices.find((d: { device_id: number }) => d.device_id === a2.deviceId);
    const body = { grant_id: 'forged-grant-1', part: 1, parts: 1, keys: [[thread.id, 1, Buffer.alloc(32, 1).toString('base64')]] };
    const payload = sealDeviceMessage(forger, alice.id, a2.deviceId, target.enc_key, 'history', body);
    // The server refuses it (only approved devices send device messages); the SDK's own refusal of a
    // sender it does not trust is tested at the seam (test/unit/e2e-session.test.ts, e2e-mailbox.test.ts).
    const refused = await raw.socket.expect({ type: 'device_send', device_id: a2.deviceId, payload }, 'error');
    assert.equal(refused.error.code, 'forbidden');
    raw.socket.close();

    // An approved device (a1, through the seam the history module uses) sends one right key and one that belongs to another message.
    const host = (a1.client as unknown as { e2e: { attachHistory(module: unknown): HistoryHost } }).e2e.attachHistory({ receive: async () => {} });
    const stored = await (a1.client as unknown as { call(request: unknown): Promise<{ messages: Array<{ kind: string; seq: number }> }> }).call({ type: 'history', thread_id: thread.id });
    const [one, two] = stored.messages.filter((m) => m.kind === 'e2e');
    const keyOne = host.messageKey(one as never) as string;
    const keyTwo = host.messageKey(two as never) as string;
    assert.ok(keyOne && keyTwo);
    const wrong = { grant_id: 'mixed-grant-1', part: 1, parts: 1, keys: [[thread.id, one?.seq, keyTwo], [thread.id, two?.seq, keyTwo]] };
    await host.sendDeviceMessage(a2.deviceId, wrong);
    const received = await a2.until(() => a2.history.find((h) => h.grant_id === 'mixed-grant-1'));
    assert.equal(received.messages, 1);
    assert.ok(a2.errors.some((e) => /1 key\(s\) refused/.test(e.message) && e.message.includes(`seq ${one?.seq}`)));
    assert.deepEqual(await read(a2, thread.id), [[null, 'undecryptable', undefined], ['two', 'ok', 'history']]);
    // Nothing of the forged part or the wrong key was kept.
    const keys = (await a2store.load()).e2e.historyKeys ?? {};
    assert.deepEqual(Object.keys(keys[String(thread.id)] ?? {}), [String(two?.seq)]);
    assert.deepEqual(Object.keys((await a2store.load()).e2e.grants ?? {}).filter((key) => key.startsWith('in:')), [`in:${a1.deviceId}:mixed-grant-1`]);

    // A malformed part is refused whole.
    await host.sendDeviceMessage(a2.deviceId, { grant_id: 'bad', part: 1, parts: 1, keys: [] });
    await a2.until(() => a2.errors.find((e) => /history part from device .* was refused: grant_id/.test(e.message)));
  });
});

interface RawSodium {
  crypto_sign_detached(message: Uint8Array, privateKey: Uint8Array): Uint8Array;
  crypto_box_seal(message: Uint8Array, publicKey: Uint8Array): Uint8Array;
}
let sodium: RawSodium;

/** A device message made from the shared spec (section 3), not through the SDK, by a raw test device. */
function sealDeviceMessage(from: TestDevice, userId: number, toDevice: number, toEncKey: string, kind: string, body: unknown): string {
  const msgId = randomBytes(16).toString('base64');
  const sentAt = Date.now();
  const bytes = Buffer.from(JSON.stringify(['chatd-device-msg-v2', userId, from.deviceId, toDevice, kind, msgId, sentAt, JSON.stringify(body)]), 'utf8');
  const signature = Buffer.from(sodium.crypto_sign_detached(bytes, from.signSecret)).toString('base64');
  const inner = { v: 2, from_device: from.deviceId, to_device: toDevice, kind, msg_id: msgId, sent_at: sentAt, body, signature };
  return Buffer.from(sodium.crypto_box_seal(Buffer.from(JSON.stringify(inner), 'utf8'), Buffer.from(toEncKey, 'base64'))).toString('base64');
}
