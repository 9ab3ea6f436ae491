import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isChatError } from '../../src/errors.js';
import type { Principal } from '../../src/services/types.js';
import { serviceWorld } from '../helpers/service-world.js';

/** Rejects with a ChatError of this code (and message, details when given). */
async function refused(promise: Promise<unknown>, code: string, expect: { message?: string | RegExp; details?: unknown; field?: string } = {}): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isChatError(error), String(error));
    assert.equal(error.code, code, error.message);
    if (typeof expect.message === 'string') assert.equal(error.message, expect.message);
    else if (expect.message) assert.match(error.message, expect.message);
    if (expect.details !== undefined) assert.deepEqual(error.details, expect.details);
    if (expect.field !== undefined) assert.equal(error.field, expect.field);
    return true;
  });
}

const text = (threadId: number, clientMsgId: string, body = '{"text":"hi"}') => ({ threadId, clientMsgId, kind: 'text' as const, bodyJson: body });

/** An envelope as readEnvelope takes it, sealed to `devices`. */
function envelope(sender: number, devices: readonly number[]): string {
  const b64 = (bytes: number) => Buffer.alloc(bytes, 1).toString('base64');
  return JSON.stringify({
    v: 2,
    sender_device: sender,
    nonce: b64(24),
    commit: b64(32),
    ciphertext: b64(40),
    keys: Object.fromEntries(devices.map((id) => [String(id), b64(80)])),
    signature: b64(64),
  });
}

async function direct(options: Parameters<typeof serviceWorld>[0] = {}) {
  const world = await serviceWorld(options);
  const alice = await world.principal('alice');
  const bob = await world.principal('bob');
  const { thread } = await world.threads.openDirect(alice, { userId: bob.user.id });
  world.fanout.log.length = 0;
  return { ...world, alice, bob, threadId: thread.id };
}

describe('MessagingService in process', () => {
  it('stores a send and announces nothing itself; announce fans out, then wakes the push worker', async () => {
    const w = await direct({ push: true });
    const { message, duplicate } = await w.messaging.send(w.alice, text(w.threadId, 'c1'));
    assert.equal(duplicate, false);
    assert.equal(message.seq, 1);
    assert.deepEqual(w.fanout.log, [], 'send alone tells nobody: the caller acks first');
    w.messaging.announce(message);
    assert.deepEqual(w.fanout.log, [`message ${w.threadId}:1`, 'push']);
  });

  it('wakes no push worker when no provider is configured', async () => {
    const w = await direct();
    const { message } = await w.messaging.send(w.alice, text(w.threadId, 'c1'));
    w.messaging.announce(message);
    assert.deepEqual(w.fanout.log, [`message ${w.threadId}:1`]);
  });

  it('answers a resend with the stored message, marked duplicate, and stores nothing more', async () => {
    const w = await direct();
    const first = await w.messaging.send(w.alice, text(w.threadId, 'same'));
    w.clock.advance(1000);
    const again = await w.messaging.send(w.alice, text(w.threadId, 'same', '{"text":"changed"}'));
    assert.deepEqual(again, { message: first.message, duplicate: true });
    const page = await w.history.history(w.bob, w.threadId, { latest: true }, 10);
    assert.deepEqual(page.messages.map((m) => m.id), [first.message.id]);
  });

  it('refuses with today\'s codes and messages', async () => {
    const w = await direct();
    const carol = await w.principal('carol');
    await refused(w.messaging.send(carol, text(w.threadId, 'x')), 'not_found', { message: `no thread ${w.threadId}` });
    await refused(w.messaging.send(w.alice, text(424242, 'x')), 'not_found', { message: 'no thread 424242' });
    await w.messaging.send(w.alice, text(w.threadId, 'used'));
    const { thread: other } = await w.threads.openDirect(w.alice, { userId: carol.user.id });
    await refused(w.messaging.send(w.alice, text(other.id, 'used')), 'invalid_field', {
      message: 'client_msg_id used was already used for a message in another thread',
      field: 'client_msg_id',
    });
    await refused(w.messaging.send(w.alice, text(w.threadId, 'big', `"${'x'.repeat(5000)}"`)), 'payload_too_large', { field: 'body' });
  });

  it('refuses a former member with forbidden, and a revoked or disabled device as authentication would', async () => {
    const w = await direct();
    const { thread } = await w.threads.createGroup(w.alice, 'g', [{ userId: w.bob.user.id }]);
    await w.threads.leave(w.bob, thread.id);
    await refused(w.messaging.send(w.bob, text(thread.id, 'b')), 'forbidden', { message: `you are no longer a member of thread ${thread.id}` });
    await refused(w.messaging.typing(w.bob, thread.id), 'forbidden');
    w.fixture.store.users.setDisabled(w.alice.user.id, true);
    await refused(w.messaging.send(w.alice, text(w.threadId, 'd')), 'account_disabled', { message: 'this account was disabled; ask the server admin' });
    await w.fixture.revokeDevice(w.bob.deviceId);
    await refused(w.messaging.send(w.bob, text(w.threadId, 'r')), 'unauthorized', { message: 'this device was logged out; log in again' });
  });

  it('requires encryption where the thread or the server says so', async () => {
    const w = await direct({ requireE2e: true });
    await refused(w.messaging.send(w.alice, text(w.threadId, 'p')), 'encryption_required', { field: 'kind' });
  });

  it('checks an e2e envelope: this sender, the thread\'s approved devices exactly, else devices_changed with the difference', async () => {
    const w = await direct();
    const a = { ...w.alice, deviceId: await w.fixture.device(w.alice.user.id, { approved: true }) };
    const b = await w.fixture.device(w.bob.user.id, { approved: true });
    const e2e = (id: string, body: string) => ({ threadId: w.threadId, clientMsgId: id, kind: 'e2e' as const, bodyJson: body });
    await refused(w.messaging.send(a, e2e('1', '{"v":2}')), 'invalid_field');
    await refused(w.messaging.send(a, e2e('2', envelope(b, [a.deviceId, b]))), 'invalid_field', { message: `sender_device must be this device (${a.deviceId})` });
    await refused(w.messaging.send(w.alice, e2e('3', envelope(w.alice.deviceId, [a.deviceId, b]))), 'invalid_field', { message: /has no approved keys/ });
    await refused(w.messaging.send(a, e2e('4', envelope(a.deviceId, [a.deviceId, 999]))), 'devices_changed', {
      message: `the thread's devices changed (missing ${b}; extra 999): fetch keys and encrypt again`,
      details: { missing_devices: [b], extra_devices: [999] },
    });
    const sent = await w.messaging.send(a, e2e('5', envelope(a.deviceId, [a.deviceId, b])));
    assert.equal(sent.message.kind, 'e2e');
  });

  it('moves delivered and read cursors, telling a receipt only when they moved', async () => {
    const w = await direct();
    for (const id of ['1', '2', '3']) await w.messaging.send(w.alice, text(w.threadId, id));
    assert.deepEqual(await w.messaging.delivered(w.bob, w.threadId, 2), { threadId: w.threadId, seq: 2 });
    assert.deepEqual(await w.messaging.read(w.bob, w.threadId, 10), { threadId: w.threadId, readSeq: 3, unread: 0, totalUnread: 0 });
    assert.deepEqual(await w.messaging.read(w.bob, w.threadId, 1), { threadId: w.threadId, readSeq: 3, unread: 0, totalUnread: 0 });
    const [alice, bob] = [w.alice.user.id, w.bob.user.id];
    assert.deepEqual(w.fanout.log, [`delivered ${w.threadId} user ${bob} seq 2 to [${alice}]`, `read ${w.threadId} user ${bob} seq 3 to [${alice},${bob}]`]);
    assert.equal(await w.messaging.totalUnread(w.alice.user.id), 0, 'their own messages are never unread');
    const carol: Principal = await w.principal('carol');
    await refused(w.messaging.read(carol, w.threadId, 1), 'not_found');
    await refused(w.messaging.delivered(carol, w.threadId, 1), 'not_found');
  });

  it('writes inbox rows for offline devices up to the read-diffusion bound, none above it', async () => {
    const w = await serviceWorld({ readDiffusionAbove: 2 });
    const [alice, bob, carol] = [await w.principal('alice'), await w.principal('bob'), await w.principal('carol')];
    const { thread: pair } = await w.threads.openDirect(alice, { userId: bob.user.id });
    const { message } = await w.messaging.send(alice, text(pair.id, 'd'));
    assert.deepEqual(await w.fixture.inbox(bob.deviceId), [message.id]);
    const { thread: group } = await w.threads.createGroup(alice, 'three', [{ userId: bob.user.id }, { userId: carol.user.id }]);
    await w.messaging.send(alice, text(group.id, 'g'));
    assert.deepEqual(await w.fixture.inbox(carol.deviceId), [], 'read diffusion: three members, bound 2');
  });

  it('serves history, jump and sync within what the member may see', async () => {
    const w = await direct();
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await w.messaging.send(w.alice, text(w.threadId, `m${i}`))).message.id);
    const page = await w.history.history(w.bob, w.threadId, { before: 4 }, 2);
    assert.deepEqual(page.messages.map((m) => m.seq), [2, 3]);
    assert.equal(page.hasMoreBefore, true);
    assert.equal(page.hasMoreAfter, true);
    assert.deepEqual(await w.history.seqOfMessage(w.bob, ids[2] as number), { threadId: w.threadId, seq: 3 });
    const carol = await w.principal('carol');
    await refused(w.history.seqOfMessage(carol, ids[2] as number), 'not_found', { message: `no message ${ids[2]}` });
    await refused(w.history.history(carol, w.threadId, { latest: true }, 5), 'not_found');
    const synced = await w.history.sync(w.bob, new Map([[w.threadId, 3]]));
    assert.deepEqual(synced.map((t) => [t.threadId, t.lastSeq, t.messages.map((m) => m.seq), t.hasMore]), [[w.threadId, 5, [4, 5], false]]);
  });

  it('tells the thread of typing from members only', async () => {
    const w = await direct();
    await w.messaging.typing(w.alice, w.threadId);
    assert.deepEqual(w.fanout.log, [`typing ${w.threadId} user ${w.alice.user.id} device ${w.alice.deviceId}`]);
    const carol = await w.principal('carol');
    await refused(w.messaging.typing(carol, w.threadId), 'not_found');
  });

  it('tells a receipt to the authors of what the cursor passed (and, of a read, to the reader), never the thread; answers who has a message', async () => {
    const w = await direct();
    const first = await w.messaging.send(w.alice, text(w.threadId, 'c1'));
    await w.messaging.send(w.alice, text(w.threadId, 'c2'));
    w.fanout.log.length = 0;
    await w.messaging.delivered(w.bob, w.threadId, first.message.seq);
    await w.messaging.delivered(w.bob, w.threadId, first.message.seq);
    await w.messaging.read(w.bob, w.threadId, 2);
    await w.messaging.read(w.alice, w.threadId, 2);
    const [alice, bob] = [w.alice.user.id, w.bob.user.id];
    assert.deepEqual(w.fanout.log, [`delivered ${w.threadId} user ${bob} seq 1 to [${alice}]`, `read ${w.threadId} user ${bob} seq 2 to [${alice},${bob}]`]);
    assert.deepEqual(await w.messaging.receipts(w.alice, w.threadId, 1), { threadId: w.threadId, seq: 1, read: [bob], delivered: [], pending: [] });
    const carol = await w.principal('carol');
    await refused(w.messaging.receipts(carol, w.threadId, 1), 'not_found', { message: `no thread ${w.threadId}` });
    await refused(w.messaging.receipts(w.bob, w.threadId, 3), 'not_found', { message: `no message 3 in thread ${w.threadId}` });
  });
});
