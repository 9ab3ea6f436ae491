import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Call } from '../../src/client/connection.js';
import { generateDevice } from '../../src/client/device-keys.js';
import { DeviceMailbox } from '../../src/client/device-mailbox.js';
import { sealDeviceMessage } from '../../src/client/device-message.js';
import { DeviceMessageLog } from '../../src/client/device-message-log.js';
import { ClientError } from '../../src/client/errors.js';
import type { RequestJson } from '../../src/client/requests.js';
import { loadSodium } from '../../src/client/sodium.js';
import { MemoryStore } from '../../src/client/store.js';
import type { DeviceMessageJson } from '../../src/protocol/frames.js';
import { FakeKeyServer, seamDevice, settle } from '../helpers/e2e-seam.js';

/**
 * The device-message queue on the receiving side: what is acked, what is
 * handled again, and grants that must not be lost. DeviceMailbox against a scripted queue; the grant flows through
 * E2eSession at its seam (test/helpers/e2e-seam.ts).
 */

const ALICE = 7;
const DAY = 86_400_000;
const sodium = await loadSodium();
const raw = (text: string): Uint8Array => sodium.from_base64(text, 1);

/** A server queue for one device: pages of `limit`, acks delete up to an id; `fail` makes a request type throw. */
class Queue {
  messages: DeviceMessageJson[] = [];
  readonly acks: number[] = [];
  fail: ((request: RequestJson) => boolean) | undefined;
  private nextId = 1;

  push(payload: string, fromDevice = 12): DeviceMessageJson {
    const message = { id: this.nextId++, from_device: fromDevice, payload, created_at: Date.now() };
    this.messages.push(message);
    return message;
  }

  readonly call = (async (request: RequestJson) => {
    if (this.fail?.(request)) throw new ClientError('disconnected', 'the connection dropped', true);
    if (request.type === 'device_messages') {
      const after = this.messages.filter((m) => m.id > (request.after ?? 0));
      const page = after.slice(0, request.limit ?? 100);
      return { type: 'device_messages', id: '1', messages: page, more: after.length > page.length };
    }
    if (request.type === 'device_messages_ack') {
      this.acks.push(request.up_to);
      this.messages = this.messages.filter((m) => m.id > request.up_to);
      return { type: 'ok', id: '1' };
    }
    throw new Error(`not scripted: ${request.type}`);
  }) as Call;
}

function setUp(now = Date.now, pending: (deviceId: number) => boolean = () => true) {
  const sender = generateDevice(sodium, 12);
  const receiver = generateDevice(sodium, 13);
  const queue = new Queue();
  const errors: unknown[] = [];
  const handled: unknown[] = [];
  const store = new MemoryStore();
  const looks: number[] = [];
  const log = new DeviceMessageLog(store, now);
  const mailbox = new DeviceMailbox({
    sodium,
    self: () => ({ user_id: ALICE, device_id: 13, pairs: [{ public: raw(receiver.enc_public), secret: raw(receiver.enc_secret) }], signSecret: raw(receiver.sign_secret) }),
    approvedSignKey: (id) => (id === 12 ? raw(sender.sign_public) : undefined),
    approvedEncKey: () => undefined,
    mayBecomeTrusted: async (_call, deviceId) => {
      looks.push(deviceId);
      return pending(deviceId);
    },
    log,
    reportError: (error) => errors.push(error),
  });
  const seal = (body: unknown, at = Date.now()): string =>
    sealDeviceMessage(sodium, { user_id: ALICE, device_id: 12, signSecret: raw(sender.sign_secret) }, { device_id: 13, encKey: raw(receiver.enc_public) }, 'history', body, at);
  const other = generateDevice(sodium, 15);
  const sealFrom15 = (body: unknown): string =>
    sealDeviceMessage(sodium, { user_id: ALICE, device_id: 15, signSecret: raw(other.sign_secret) }, { device_id: 13, encKey: raw(receiver.enc_public) }, 'history', body);
  return { queue, mailbox, errors, handled, seal, sealFrom15, store, looks };
}


describe('device mailbox', () => {
  it('a live message handled after a blocked one is not acked (the ack would delete the blocked one); the next drain handles the blocked one and does not handle the other twice', async () => {
    const { queue, mailbox, handled, seal } = setUp();
    let failures = 1;
    mailbox.handle('history', async (_from, body) => {
      if (failures-- > 0) throw new ClientError('disconnected', 'cut short', true);
      handled.push(body);
    });
    await mailbox.drain(queue.call);
    mailbox.live(queue.call, queue.push(seal({ part: 1 })));
    mailbox.live(queue.call, queue.push(seal({ part: 2 })));
    for (let i = 0; i < 4; i++) await settle();
    assert.deepEqual(handled, [{ part: 2 }]);
    assert.deepEqual(queue.acks, [], 'nothing acked past the blocked part 1');
    assert.deepEqual(queue.messages.map((m) => m.id), [1, 2]);
    await mailbox.drain(queue.call);
    assert.deepEqual(handled, [{ part: 2 }, { part: 1 }], 'part 2 is recognised, not handled again');
    assert.deepEqual([queue.acks, queue.messages], [[2], []]);
  });

  it('a drain acks page by page: a connection lost on the third page keeps the first two acked', async () => {
    const { queue, mailbox, handled, seal } = setUp();
    mailbox.handle('history', async (_from, body) => void handled.push(body));
    for (let i = 0; i < 250; i++) queue.push(seal({ n: i }));
    queue.fail = (request) => request.type === 'device_messages' && request.after === 200;
    await assert.rejects(mailbox.drain(queue.call), (error: ClientError) => error.code === 'disconnected');
    assert.deepEqual(queue.acks, [100, 200]);
    assert.equal(queue.messages.length, 50);
    queue.fail = undefined;
    await mailbox.drain(queue.call);
    assert.deepEqual([handled.length, queue.acks.at(-1), queue.messages.length], [250, 250, 0]);
  });

  it('the replay log is written once per drained page, each write stored before the page is acked (not the whole log per message)', async () => {
    const { queue, mailbox, seal, store } = setUp();
    mailbox.handle('history', async () => undefined);
    for (let i = 0; i < 250; i++) queue.push(seal({ n: i }));
    const writes: number[] = [];
    const setE2e = store.setE2e.bind(store);
    store.setE2e = (async (field: string, value: unknown) => {
      if (field === 'deviceMessagesSeen') writes.push(Object.keys(value as object).length);
      return setE2e(field as never, value as never);
    }) as typeof store.setE2e;
    await mailbox.drain(queue.call);
    assert.deepEqual(writes, [100, 200, 250]);
    assert.deepEqual(queue.acks, [100, 200, 250]);
  });

  it('a message from a device that can never be trusted (revoked, unknown: not a pending device of this user after a fresh look) is refused and acked; what follows is handled and acked', async () => {
    const { queue, mailbox, handled, sealFrom15, seal, looks } = setUp(Date.now, () => false);
    mailbox.handle('history', async (_from, body) => void handled.push(body));
    queue.push(sealFrom15({ from: 15 }), 15);
    queue.push(sealFrom15({ from: 15, again: true }), 15);
    queue.push(seal({ part: 1 }));
    await mailbox.drain(queue.call);
    assert.deepEqual(handled, [{ part: 1 }]);
    assert.deepEqual([queue.acks, queue.messages], [[3], []]);
    assert.deepEqual(looks, [15], 'one fresh look per device per drain');
  });

  it('a message from a pending device of this user waits (nothing after it acked), but not past a week', async () => {
    const { queue, mailbox, handled, sealFrom15, seal } = setUp(Date.now, (id) => id === 15);
    mailbox.handle('history', async (_from, body) => void handled.push(body));
    const waiting = queue.push(sealFrom15({ from: 15 }), 15);
    queue.push(seal({ part: 1 }));
    await mailbox.drain(queue.call);
    assert.deepEqual([handled, queue.acks, queue.messages.length], [[{ part: 1 }], [], 2]);
    // Eight days later (by the server's clock), still not approved: refused and acked.
    Object.assign(waiting, { created_at: Date.now() - 8 * DAY });
    await mailbox.drain(queue.call);
    assert.deepEqual([handled, queue.acks, queue.messages.length], [[{ part: 1 }], [2], 0], 'the part is not handled twice');
  });

  it('the same signed message delivered again (a replay, under another server id) is acked and not handled twice, across a restart of the log from the store', async () => {
    const { queue, mailbox, handled, seal, store } = setUp();
    mailbox.handle('history', async (_from, body) => void handled.push(body));
    const payload = seal({ part: 1 });
    queue.push(payload);
    await mailbox.drain(queue.call);
    queue.push(payload);
    await mailbox.drain(queue.call);
    assert.deepEqual([handled, queue.acks, queue.messages], [[{ part: 1 }], [1, 2], []]);
    // Kept in the store: a restarted device recognises it too.
    const seen = (await store.load()).e2e.deviceMessagesSeen!;
    assert.equal(Object.keys(seen).length, 1);
    const restarted = new DeviceMessageLog(store);
    restarted.load(seen);
    const [id, at] = Object.entries(seen)[0]!;
    assert.equal(restarted.judge(id, at), 'replayed');
  });

  it('a message made longer ago than the log remembers (or far in the future) is refused, reported and acked, never handled', async () => {
    const now = Date.now();
    const { queue, mailbox, handled, seal, errors } = setUp(() => now);
    mailbox.handle('history', async (_from, body) => void handled.push(body));
    queue.push(seal({ old: true }, now - 32 * DAY));
    queue.push(seal({ future: true }, now + 2 * DAY));
    queue.push(seal({ fine: true }, now - 29 * DAY));
    await mailbox.drain(queue.call);
    assert.deepEqual(handled, [{ fine: true }]);
    assert.deepEqual(queue.messages, []);
    assert.equal(errors.filter((error) => error instanceof ClientError && /outside the time/.test(error.message)).length, 2);
  });
});

describe('device mailbox: account-key grants', () => {
  it('the grant of an approver revoked after it approved (before the new device fetched it) is taken', async () => {
    const server = new FakeKeyServer();
    const a = await seamDevice(server, ALICE, 12);
    const n = await seamDevice(server, ALICE, 13);
    await settle();
    // The new device is offline: the grant waits in its queue.
    server.sessions.delete(13);
    await a.session.approveDevice(13, n.session.ownFingerprint());
    assert.equal(server.queues.get(13)?.length, 1);
    // The old phone is sold and revoked before the new one comes back.
    server.devices.set(12, { ...server.devices.get(12)!, revoked: true });
    server.sessions.set(13, n.session);
    await n.session.connected(ALICE, 13, n.call);
    await settle();
    await settle();
    assert.deepEqual(n.standings.map((s) => s.state), ['pending', 'approved']);
    assert.ok((await n.store.load()).e2e.account?.account_secret, 'the secret was taken');
    assert.deepEqual(server.queues.get(13), [], 'and acked');
  });

  it('a grant from a device not (yet) known as approved stays queued, and is taken once its approval is heard of', async () => {
    const server = new FakeKeyServer();
    const a = await seamDevice(server, ALICE, 12);
    const n = await seamDevice(server, ALICE, 13);
    await settle();
    // n has 12 as trusted; make n forget it: n hears of 12 only as pending (a keys report before the approval).
    const approved = server.devices.get(12)!;
    server.devices.set(12, { ...approved, account_signature: null });
    const fresh = await seamDevice(server, ALICE, 14, { store: new MemoryStore() });
    server.devices.set(12, approved);
    server.sessions.delete(14);
    await a.session.approveDevice(14, fresh.session.ownFingerprint());
    server.sessions.set(14, fresh.session);
    // Connected while the server still hides 12's certificate: the grant waits.
    server.tamper = (reply) => ({ ...reply, devices: reply.devices.map((d) => (d.device_id === 12 ? { ...d, account_signature: null } : d)) });
    await fresh.session.connected(ALICE, 14, fresh.call);
    await settle();
    await settle();
    assert.deepEqual(fresh.standings.map((s) => s.state), ['pending']);
    assert.equal(server.queues.get(14)?.length, 1, 'not acked: it may become good');
    // 12's approval is heard of: the grant is taken.
    server.tamper = (reply) => reply;
    server.announce(12);
    for (let i = 0; i < 4; i++) await settle();
    assert.deepEqual(fresh.standings.map((s) => s.state), ['pending', 'approved']);
    assert.deepEqual(server.queues.get(14), []);
    void n;
  });

  it('a grant whose device_send failed after device_approve committed is kept in the store and sent at the next connect', async () => {
    const server = new FakeKeyServer();
    const original = server.callFor.bind(server);
    let dropSends = 1;
    server.callFor = (userId, deviceId) => {
      const call = original(userId, deviceId);
      return (async (request: RequestJson) => {
        if (deviceId === 12 && request.type === 'device_send' && dropSends-- > 0) throw new ClientError('disconnected', 'the connection dropped', true);
        return call(request as never);
      }) as Call;
    };
    const a = await seamDevice(server, ALICE, 12);
    const n = await seamDevice(server, ALICE, 13);
    await settle();
    await assert.rejects(a.session.approveDevice(13, n.session.ownFingerprint()), (error: ClientError) => error.code === 'disconnected');
    assert.equal(server.devices.get(13)?.account_signature !== null, true, 'the server took the approval');
    assert.deepEqual((await a.store.load()).e2e.owedGrants, [13]);
    assert.deepEqual(n.standings.map((s) => s.state), ['pending']);
    await a.session.connected(ALICE, 12, a.call);
    for (let i = 0; i < 4; i++) await settle();
    assert.deepEqual(n.standings.map((s) => s.state), ['pending', 'approved']);
    assert.deepEqual((await a.store.load()).e2e.owedGrants, []);
  });
});
