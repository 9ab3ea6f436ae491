import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type EncPair, sealEnvelope, unsealKey, readEnvelope } from '../../src/client/envelope.js';
import { ClientError } from '../../src/client/errors.js';
import type { HistoryHost } from '../../src/client/history-hook.js';
import type { HistoryPart } from '../../src/client/history-parts.js';
import { type HistoryProgress, type HistoryReceived, HistoryShare } from '../../src/client/history-share.js';
import { loadSodium } from '../../src/client/sodium.js';
import { FakeKeyServer, seamDevice, settle } from '../helpers/e2e-seam.js';
import type { MessageJson, MessagesFrame, ThreadJson } from '../../src/protocol/frames.js';

/**
 * HistoryShare against a scripted host and server: what a sender sends (and
 * sends again after an interruption), what a receiver keeps and refuses. The
 * messages are real v2 envelopes, so the receiver's key check is the real one.
 */

const sodium = await loadSodium();
const b64 = (bytes: Uint8Array): string => sodium.to_base64(bytes, sodium.base64_variants.ORIGINAL);
const sender = sodium.crypto_sign_keypair();
const box = sodium.crypto_box_keypair();
const pair: EncPair = { public: box.publicKey, secret: box.privateKey };
const ME = 7, DEVICE = 12, NEW = 13;

/** A thread's stored messages, and the K of each (what the sending device reads). */
class FakeServer {
  readonly messages = new Map<number, MessageJson[]>();
  readonly keys = new Map<string, string>();
  failPages = 0;
  private ids = 0;

  add(threadId: number, text: string, createdAt = 1000, kind: 'e2e' | 'text' = 'e2e'): MessageJson {
    const list = this.messages.get(threadId) ?? [];
    const seq = list.length + 1;
    const clientMsgId = `m-${threadId}-${seq}`;
    let body: unknown = { text };
    if (kind === 'e2e') {
      body = sealEnvelope(sodium, { device_id: DEVICE, signSecret: sender.privateKey }, { thread_id: threadId, client_msg_id: clientMsgId, sender_user_id: ME }, { text }, [{ device_id: DEVICE, encKey: box.publicKey }]);
      this.keys.set(`${threadId}:${seq}`, b64(unsealKey(sodium, readEnvelope(body)!, DEVICE, [pair])!));
    }
    const message: MessageJson = { id: ++this.ids, thread_id: threadId, seq, sender_id: ME, sender_device_id: DEVICE, client_msg_id: clientMsgId, kind, body, created_at: createdAt };
    list.push(message);
    this.messages.set(threadId, list);
    return message;
  }

  threads(): ThreadJson[] {
    return [...this.messages.entries()].map(([id, list]) => ({ id, last_seq: list.length }) as ThreadJson);
  }

  page(threadId: number, anchor: { before: number } | { after: number }, limit: number): MessagesFrame {
    if (this.failPages > 0) {
      this.failPages--;
      throw new ClientError('disconnected', 'the connection dropped', true);
    }
    const list = this.messages.get(threadId);
    if (!list) throw new ClientError('not_found', 'no such thread', false);
    const chosen = 'before' in anchor ? list.filter((m) => m.seq < anchor.before).slice(-limit) : list.filter((m) => m.seq > anchor.after).slice(0, limit);
    const first = chosen[0]?.seq ?? 0;
    const last = chosen[chosen.length - 1]?.seq ?? 0;
    return { type: 'messages', id: '1', thread_id: threadId, messages: chosen, has_more_before: first > 1, has_more_after: last > 0 && last < list.length } as MessagesFrame;
  }
}

/** A host over the fake server: the sending device reads every e2e message; sends are recorded (or fail when told). */
class FakeHost implements HistoryHost {
  grantsStored: Record<string, Record<string, unknown>> = {};
  readonly sent: HistoryPart[] = [];
  readonly kept: Array<readonly [number, number, string]> = [];
  failSendAt: number | undefined;

  constructor(private readonly server: FakeServer, private readonly approved = new Set([NEW])) {}

  async ready(): Promise<void> {}

  messageKey(message: MessageJson): string | undefined {
    return this.server.keys.get(`${message.thread_id}:${message.seq}`);
  }

  async addHistoryKeys(keys: ReadonlyArray<readonly [number, number, string]>): Promise<void> {
    this.kept.push(...keys);
  }

  async sendDeviceMessage(toDevice: number, body: unknown): Promise<void> {
    assert.equal(toDevice, NEW);
    if (this.failSendAt === this.sent.length + 1) {
      this.failSendAt = undefined;
      throw new ClientError('disconnected', 'the connection dropped', true);
    }
    this.sent.push(body as HistoryPart);
  }

  isApprovedOwnDevice(deviceId: number): boolean {
    return this.approved.has(deviceId);
  }

  grants(): Record<string, Record<string, unknown>> {
    return this.grantsStored;
  }

  async setGrants(grants: Record<string, Record<string, unknown>>): Promise<void> {
    this.grantsStored = structuredClone(grants);
  }
}

function share(server: FakeServer, host: FakeHost, options: { partBytes?: number; maxMessages?: number } = {}) {
  const progress: HistoryProgress[] = [];
  const received: HistoryReceived[] = [];
  const errors: Error[] = [];
  const module = new HistoryShare({
    sodium: loadSodium,
    requests: { threads: async () => server.threads(), page: async (thread, anchor, limit) => server.page(thread, anchor, limit) },
    progress: (p) => progress.push(p),
    received: (r) => received.push(r),
    error: (e) => errors.push(e as Error),
    maxMessages: options.maxMessages ?? 100_000,
    partBytes: options.partBytes ?? 32_768,
  });
  module.attach(host);
  return { module, progress, received, errors };
}

describe('history sharing: the sender', () => {
  it('sends the key of every message it reads, of every thread, in parts within the budget, with progress after each', async () => {
    const server = new FakeServer();
    for (let i = 0; i < 30; i++) server.add(3, `three ${i}`);
    server.add(3, 'plaintext', 1000, 'text');
    for (let i = 0; i < 5; i++) server.add(8, `eight ${i}`);
    const host = new FakeHost(server);
    const { module, progress } = share(server, host, { partBytes: 1024 });
    const result = await module.share(NEW, {});
    assert.deepEqual([result.messages, result.truncated], [35, false]);
    assert.ok(host.sent.length > 1);
    for (const part of host.sent) assert.ok(JSON.stringify(part).length <= 1024);
    assert.deepEqual(host.sent.flatMap((part) => part.keys).map(([t, s]) => `${t}:${s}`), [...server.keys.keys()]);
    assert.deepEqual(progress.map((p) => p.part), host.sent.map((_, i) => i + 1));
    assert.ok(progress.every((p) => p.parts === host.sent.length && p.grant_id === result.grant_id && p.to_device === NEW));
  });

  it('takes only the chosen threads, from `since` on; refuses a device that is not approved and a thread that is not the user\'s', async () => {
    const server = new FakeServer();
    server.add(3, 'old', 100);
    server.add(3, 'new', 5000);
    server.add(8, 'elsewhere', 5000);
    const host = new FakeHost(server);
    const { module } = share(server, host);
    assert.equal((await module.share(NEW, { threads: [3], since: 1000 })).messages, 1);
    assert.deepEqual(host.sent.flatMap((part) => part.keys).map(([t, s]) => [t, s]), [[3, 2]]);
    await assert.rejects(module.share(99, {}), { code: 'not_found' });
    await assert.rejects(module.share(NEW, { threads: [404] }), { code: 'not_found' });
  });

  it('L-4: a page the server fills with another thread\'s messages shares none of them', async () => {
    const server = new FakeServer();
    server.add(3, 'chosen', 5000);
    const other = server.add(8, 'not chosen', 5000);
    const honest = server.page.bind(server);
    server.page = (threadId, anchor, limit) => {
      const page = honest(threadId, anchor, limit);
      return threadId === 3 ? { ...page, messages: [other, ...page.messages] } : page;
    };
    const host = new FakeHost(server);
    const { module } = share(server, host);
    assert.equal((await module.share(NEW, { threads: [3] })).messages, 1);
    assert.deepEqual(host.sent.flatMap((part) => part.keys).map(([t, s]) => [t, s]), [[3, 1]]);
  });

  it('a grant cut short continues from the next part (at resume, or when asked again) and never sends a key twice', async () => {
    const server = new FakeServer();
    for (let i = 0; i < 20; i++) server.add(3, `m ${i}`);
    const host = new FakeHost(server);
    host.failSendAt = 3;
    const first = share(server, host, { partBytes: 512 });
    await assert.rejects(first.module.share(NEW, {}), { code: 'disconnected' });
    assert.equal(host.sent.length, 2);
    // Messages that arrive later are not part of the grant (they were sealed to the new device).
    server.add(3, 'after the grant began');
    const again = share(server, host, { partBytes: 512 });
    await again.module.resume();
    const keys = host.sent.flatMap((part) => part.keys).map(([t, s]) => `${t}:${s}`);
    assert.deepEqual(keys, [...server.keys.keys()].slice(0, 20));
    assert.deepEqual(again.progress.map((p) => p.part)[0], 3);
    assert.ok(host.sent.every((part) => part.parts === host.sent.length));
    const [record] = Object.values(host.grantsStored);
    assert.equal(record?.state, 'done');
    const parts = host.sent.length;
    await again.module.resume();
    assert.equal(host.sent.length, parts, 'a finished grant is not sent again');
  });

  it('asked again with the same choice, the unfinished grant goes on under its id; another choice is another grant', async () => {
    const server = new FakeServer();
    for (let i = 0; i < 10; i++) server.add(3, `m ${i}`);
    server.add(8, 'other');
    const host = new FakeHost(server);
    host.failSendAt = 2;
    const { module, progress } = share(server, host, { partBytes: 512 });
    await assert.rejects(module.share(NEW, {}), { code: 'disconnected' });
    const again = await module.share(NEW, {});
    assert.equal(again.grant_id, progress[0]?.grant_id);
    assert.deepEqual(progress.map((p) => p.part), host.sent.map((_, i) => i + 1));
    const other = await module.share(NEW, { threads: [8] });
    assert.notEqual(other.grant_id, again.grant_id);
    assert.equal(other.messages, 1);
  });

  it('a grant past maxMessages keeps the newest and says it was cut', async () => {
    const server = new FakeServer();
    for (let i = 0; i < 10; i++) server.add(3, `m ${i}`);
    const host = new FakeHost(server);
    const { module, errors } = share(server, host, { maxMessages: 4 });
    assert.deepEqual(await module.share(NEW, {}).then((r) => [r.messages, r.truncated]), [4, true]);
    assert.deepEqual(host.sent.flatMap((part) => part.keys).map(([, s]) => s), [7, 8, 9, 10]);
    assert.match(errors[0]?.message ?? '', /newest 4/);
  });

  it('a target revoked while its grant waits ends the grant at resume', async () => {
    const server = new FakeServer();
    server.add(3, 'm');
    const host = new FakeHost(server);
    host.failSendAt = 1;
    await assert.rejects(share(server, host).module.share(NEW, {}), { code: 'disconnected' });
    const revoked = new FakeHost(server, new Set());
    revoked.grantsStored = host.grantsStored;
    const { module, errors } = share(server, revoked);
    await module.resume();
    assert.equal(Object.values(revoked.grantsStored)[0]?.state, 'abandoned');
    assert.match(errors[0]?.message ?? '', /no longer an approved device/);
    assert.deepEqual(revoked.sent, []);
  });
});

describe('history sharing: the receiver', () => {
  function fixture() {
    const server = new FakeServer();
    for (let i = 0; i < 3; i++) server.add(3, `m ${i}`);
    const host = new FakeHost(server);
    const { module, received, errors } = share(server, host, { maxMessages: 100 });
    const key = (seq: number): string => server.keys.get(`3:${seq}`) as string;
    return { server, host, module, received, errors, key };
  }

  it('keeps the keys of a good part, says so, and ignores the same part again', async () => {
    const { host, module, received, key } = fixture();
    const part = { grant_id: 'grant-0001', part: 1, parts: 2, keys: [[3, 1, key(1)], [3, 2, key(2)]] };
    await module.receive(DEVICE, part);
    await module.receive(DEVICE, part);
    assert.deepEqual(host.kept, [[3, 1, key(1)], [3, 2, key(2)]]);
    assert.deepEqual(received, [{ from_device: DEVICE, grant_id: 'grant-0001', parts_received: 1, parts: 2, messages: 2, threads: [3] }]);
    assert.deepEqual(host.grantsStored[`in:${DEVICE}:grant-0001`]?.received, [1]);
  });

  it('refuses a key that does not open the message at its seq (another message\'s key) and keeps the rest', async () => {
    const { host, module, received, errors, key } = fixture();
    await module.receive(DEVICE, { grant_id: 'grant-0002', part: 1, parts: 1, keys: [[3, 1, key(2)], [3, 2, key(2)], [3, 99, key(3)]] });
    assert.deepEqual(host.kept, [[3, 2, key(2)]]);
    assert.equal(received[0]?.messages, 1);
    assert.match(errors[0]?.message ?? '', /2 key\(s\) refused .*thread 3 seq 1, thread 3 seq 99/);
  });

  it('refuses a malformed part whole: nothing kept, nothing recorded', async () => {
    const { host, module, received, errors } = fixture();
    await module.receive(DEVICE, { grant_id: 'grant-0003', part: 2, parts: 1, keys: [] });
    assert.deepEqual([host.kept, received, host.grantsStored], [[], [], {}]);
    assert.match(errors[0]?.message ?? '', /history part from device 12 was refused: part must/);
  });

  it('keeps no key of a thread it may not read', async () => {
    const { host, module, errors } = fixture();
    await module.receive(DEVICE, { grant_id: 'grant-0004', part: 1, parts: 1, keys: [[77, 1, Buffer.alloc(32).toString('base64')]] });
    assert.deepEqual(host.kept, []);
    assert.match(errors[0]?.message ?? '', /1 key\(s\) refused/);
  });

  it('a part whose messages could not be fetched (the connection dropped) fails retryable, keeps nothing, and is taken whole when it comes again', async () => {
    const { server, host, module, received, key } = fixture();
    const part = { grant_id: 'grant-0005', part: 1, parts: 1, keys: [[3, 1, key(1)]] };
    server.failPages = 1;
    await assert.rejects(module.receive(DEVICE, part), (error: ClientError) => error.retryable);
    assert.deepEqual([host.kept, received, host.grantsStored], [[], [], {}]);
    await module.receive(DEVICE, part);
    assert.deepEqual(host.kept, [[3, 1, key(1)]]);
  });

  it('a grant that would add more than maxMessages keys is cut there', async () => {
    const server = new FakeServer();
    for (let i = 0; i < 3; i++) server.add(3, `m ${i}`);
    const host = new FakeHost(server);
    const { module, errors } = share(server, host, { maxMessages: 2 });
    const keys = [1, 2, 3].map((seq) => [3, seq, server.keys.get(`3:${seq}`)]);
    await module.receive(DEVICE, { grant_id: 'grant-0006', part: 1, parts: 1, keys });
    assert.equal(host.kept.length, 2);
    assert.match(errors[0]?.message ?? '', /past maxHistoryMessages: 1 key/);
  });
});

describe('history sharing: the device-message queue', () => {
  it('a history part whose handling fails in a way that may pass stays queued and is handled at the next connect', async () => {
    const server = new FakeKeyServer();
    const first = await seamDevice(server, ME, DEVICE);
    const second = await seamDevice(server, ME, NEW);
    await settle();
    await first.session.approveDevice(NEW, second.session.ownFingerprint());
    await settle();
    await settle();
    await first.session.attachHistory({ receive: async () => {} }).sendDeviceMessage(NEW, { grant_id: 'grant-0007', part: 1, parts: 1, keys: [] });
    await settle();
    const handled: unknown[] = [];
    let fail = true;
    second.session.attachHistory({
      receive: async (_from, body) => {
        if (fail) throw new ClientError('disconnected', 'the connection dropped', true);
        handled.push(body);
      },
    });
    await second.session.connected(ME, NEW, second.call);
    assert.equal(server.queues.get(NEW)?.length, 1, 'not acked');
    fail = false;
    await second.session.connected(ME, NEW, second.call);
    assert.equal(handled.length, 1);
    assert.equal(server.queues.get(NEW)?.length, 0, 'acked once handled');
  });
});
