import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { TestAccount, approvedDevice, envelope, loadSodium } from '../helpers/e2e.js';
import { logIn, signUp } from '../helpers/http.js';
import { type ServerProcess, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { preferredTransport } from '../helpers/transports.js';
import { type TestSocket, connectAuthenticated } from '../helpers/ws.js';

/**
 * Edits, deletes, reactions, replies, mentions and "delete for me" over the
 * real server (SQLite), spoken as raw frames (docs/protocol.md, "Requests:
 * changing messages"). Change messages travel like messages: these tests show
 * they reach devices that were away (inbox, sync), survive a restart, and
 * that deleted text leaves the database file.
 */

const INBOX_MAX = 10;

const CONFIG = (editWindowSeconds: number) => `
[accounts]
registration = "open"
[rate_limit]
login_per_address = 100000
[inbox]
max_messages = ${INBOX_MAX}
[messages]
edit_window_seconds = ${editWindowSeconds}
[websocket]
frames_per_second = 1000
[limits]
user_sends_per_second = 10000
`;

interface Server {
  process: ServerProcess;
  readonly data: string;
  readonly config: string;
}

async function start(editWindowSeconds = 172_800): Promise<Server> {
  const dir = tempDir();
  const data = join(dir, 'data');
  const config = writeConfig(dir, CONFIG(editWindowSeconds));
  return { process: await startServer(['--data', data, '--transport', preferredTransport, '--config', config]), data, config };
}

async function restart(server: Server): Promise<void> {
  assert.equal(await server.process.stop(), 0, 'a clean stop');
  server.process = await startServer(['--data', server.data, '--transport', preferredTransport, '--config', server.config]);
}

const text = (body: string) => ({ text: body });

/** Sends a text message; resolves with its ack. */
async function send(socket: TestSocket, threadId: number, body: string, extra: Record<string, unknown> = {}): Promise<any> {
  return socket.expect({ type: 'send', thread_id: threadId, client_msg_id: randomUUID(), body: text(body), ...extra }, 'ack');
}

async function openDirect(socket: TestSocket, userId: number): Promise<number> {
  return (await socket.expect({ type: 'direct_open', user_id: userId }, 'thread')).thread.id;
}

async function createGroup(socket: TestSocket, members: number[]): Promise<number> {
  return (await socket.expect({ type: 'group_create', title: 'g', members }, 'thread')).thread.id;
}

async function history(socket: TestSocket, threadId: number): Promise<any[]> {
  return (await socket.expect({ type: 'history', thread_id: threadId, limit: 200 }, 'messages')).messages;
}

/** Resolves with the live message event of the thread at `seq` (waiting for it if need be). */
function messageAt(socket: TestSocket, threadId: number, seq: number): Promise<any> {
  return socket.nextEvent((frame: any) => frame.type === 'message' && frame.message.thread_id === threadId && frame.message.seq === seq).then((frame: any) => frame.message);
}

describe('message changes over the real server', () => {
  let server: Server;
  before(async () => {
    server = await start();
  });
  after(async () => {
    await server.process.stop();
  });

  it('an edit, a reaction and a delete reach a device that was away through its inbox, exactly once, in seq order, also after a restart; history shows the latest state', async () => {
    const alice = await signUp(server.process.url, 'alice1');
    const bob = await signUp(server.process.url, 'bob1');
    // Bob's second device: logged in, not connected until the end.
    const bobAway = await logIn(server.process.url, 'bob1', 'correct horse', 'away');
    const a = (await connectAuthenticated(server.process.wsUrl, alice.token)).socket;
    const b = (await connectAuthenticated(server.process.wsUrl, bob.token)).socket;
    const threadId = await openDirect(a, bob.userId);

    const first = await send(a, threadId, 'first version');
    const second = await send(a, threadId, 'to be deleted');
    const edit = await a.expect({ type: 'edit', message_id: first.message_id, client_msg_id: randomUUID(), body: text('second version') }, 'ack');
    // Alice reacts (a change moves its sender's read cursor, and bob's unread is checked below).
    const reaction = await a.expect({ type: 'react', message_id: first.message_id, emoji: '👍', client_msg_id: randomUUID() }, 'ack');
    const deletion = await a.expect({ type: 'delete', message_id: second.message_id, for: 'everyone', client_msg_id: randomUUID() }, 'ack');
    assert.deepEqual([edit.seq, reaction.seq, deletion.seq], [3, 4, 5], 'each change takes the next seq of the thread');

    // On the connection that made it, a change's ack comes before its event, as a send's does.
    await messageAt(a, threadId, edit.seq);
    const ackAt = a.arrivals.findIndex((frame: any) => frame.type === 'ack' && frame.seq === edit.seq);
    const eventAt = a.arrivals.findIndex((frame: any) => frame.type === 'message' && frame.message.seq === edit.seq && frame.message.thread_id === threadId);
    assert.ok(ackAt >= 0 && ackAt < eventAt, `ack at ${ackAt}, event at ${eventAt}`);
    // A live device gets each change as a message event with its change.
    const liveEdit = await messageAt(b, threadId, edit.seq);
    assert.deepEqual(liveEdit.change, { type: 'edit', message_id: first.message_id });
    assert.deepEqual(liveEdit.body, text('second version'));
    assert.deepEqual((await messageAt(b, threadId, deletion.seq)).change, { type: 'delete', message_id: second.message_id });

    await restart(server);
    const away = await connectAuthenticated(server.process.wsUrl, bobAway.token);
    const seqs = away.inbox.map((frame: any) => frame.message.seq);
    assert.deepEqual(seqs, [1, 2, 3, 4, 5], 'every message and change once, in seq order');
    const changes = away.inbox.map((frame: any) => frame.message.change ?? null);
    assert.deepEqual(changes, [
      null,
      null,
      { type: 'edit', message_id: first.message_id },
      { type: 'reaction', message_id: first.message_id, emoji: '👍', on: true },
      { type: 'delete', message_id: second.message_id },
    ]);
    assert.equal(away.inbox[4].message.body, null, 'a delete carries no body');
    // The inbox shows the targets as stored now: the first message already edited, the second already erased.
    assert.deepEqual(away.inbox[1].message.deleted, true);
    assert.equal(away.inbox[1].message.body, null);

    const shown = await history(away.socket, threadId);
    assert.deepEqual(
      shown.map((message: any) => message.seq),
      [1, 2],
      'history shows the content messages, never the change messages',
    );
    const [edited, deleted] = shown;
    assert.deepEqual(edited.body, text('second version'));
    assert.equal(edited.edited_at, edit.created_at);
    assert.deepEqual(edited.reactions, [{ emoji: '👍', user_ids: [alice.userId] }]);
    assert.equal(deleted.deleted, true);
    assert.equal(deleted.body, null);
    const thread = (await away.socket.expect({ type: 'thread_get', thread_id: threadId }, 'thread')).thread;
    assert.equal(thread.unread, 2, 'unread counts the two messages, not the three changes');
    assert.equal(thread.last_message.seq, 2, 'the last message is never a change');
    away.socket.close();
    a.close();
    b.close();
  });

  it('brings the changes by sync to a device whose inbox overflowed', async () => {
    const alice = await signUp(server.process.url, 'alice2');
    const bob = await signUp(server.process.url, 'bob2');
    const bobAway = await logIn(server.process.url, 'bob2', 'correct horse', 'away');
    const a = (await connectAuthenticated(server.process.wsUrl, alice.token)).socket;
    const threadId = await openDirect(a, bob.userId);
    const target = await send(a, threadId, 'edited later');
    for (let n = 0; n < INBOX_MAX; n++) await send(a, threadId, `filler ${n}`);
    const edit = await a.expect({ type: 'edit', message_id: target.message_id, client_msg_id: randomUUID(), body: text('edited now') }, 'ack');

    const away = await connectAuthenticated(server.process.wsUrl, bobAway.token);
    assert.equal(away.overflow, true);
    const synced = await away.socket.expect({ type: 'sync', cursors: [{ thread_id: threadId, seq: 0 }] }, 'sync');
    const messages = synced.threads.find((entry: any) => entry.thread_id === threadId).messages;
    assert.deepEqual(
      messages.map((message: any) => message.seq),
      Array.from({ length: INBOX_MAX + 2 }, (_, n) => n + 1),
      'every seq once, the change included',
    );
    const change = messages.at(-1);
    assert.equal(change.seq, edit.seq);
    assert.deepEqual(change.change, { type: 'edit', message_id: target.message_id });
    assert.deepEqual(messages[0].body, text('edited now'), 'the target itself is in its latest state');
    away.socket.close();
    a.close();
  });

  it('lets only the author edit, and says so', async () => {
    const alice = await signUp(server.process.url, 'alice3');
    const bob = await signUp(server.process.url, 'bob3');
    const a = (await connectAuthenticated(server.process.wsUrl, alice.token)).socket;
    const b = (await connectAuthenticated(server.process.wsUrl, bob.token)).socket;
    const threadId = await openDirect(a, bob.userId);
    const sent = await send(a, threadId, 'mine');
    const refused = await b.expect({ type: 'edit', message_id: sent.message_id, client_msg_id: randomUUID(), body: text('yours now') }, 'error');
    assert.equal(refused.error.code, 'forbidden');
    assert.equal(refused.error.message, 'only the author can edit this message');
    const missing = await b.expect({ type: 'edit', message_id: 999_999, client_msg_id: randomUUID(), body: text('x') }, 'error');
    assert.equal(missing.error.code, 'not_found');
    // An e2e edit of a text message is refused naming the kind.
    const kind = await a.expect({ type: 'edit', message_id: sent.message_id, client_msg_id: randomUUID(), kind: 'e2e', body: { v: 2 } }, 'error');
    assert.equal(kind.error.code, 'invalid_field');
    assert.equal(kind.error.field, 'kind');
    assert.equal((await history(a, threadId))[0].body.text, 'mine', 'nothing was changed');
    // The author's edit, sent twice with one client_msg_id: stored once, the same ack again.
    const editId = randomUUID();
    const once = await a.expect({ type: 'edit', message_id: sent.message_id, client_msg_id: editId, body: text('mine, edited') }, 'ack');
    const again = await a.expect({ type: 'edit', message_id: sent.message_id, client_msg_id: editId, body: text('mine, edited') }, 'ack');
    assert.deepEqual({ ...again, id: once.id }, { ...once, duplicate: true });
    assert.equal((await history(a, threadId))[0].body.text, 'mine, edited');
    a.close();
    b.close();
  });

  it('lets an owner or admin delete anyone\'s message in a group, and refuses a plain member', async () => {
    const owner = await signUp(server.process.url, 'owner4');
    const member = await signUp(server.process.url, 'member4');
    const other = await signUp(server.process.url, 'other4');
    const o = (await connectAuthenticated(server.process.wsUrl, owner.token)).socket;
    const m = (await connectAuthenticated(server.process.wsUrl, member.token)).socket;
    const x = (await connectAuthenticated(server.process.wsUrl, other.token)).socket;
    const threadId = await createGroup(o, [member.userId, other.userId]);
    const first = await send(x, threadId, 'by other, one');
    const second = await send(x, threadId, 'by other, two');

    const refused = await m.expect({ type: 'delete', message_id: first.message_id, for: 'everyone', client_msg_id: randomUUID() }, 'error');
    assert.equal(refused.error.code, 'forbidden');
    await o.expect({ type: 'delete', message_id: first.message_id, for: 'everyone', client_msg_id: randomUUID() }, 'ack');
    await o.expect({ type: 'group_role', thread_id: threadId, user_id: member.userId, role: 'admin' }, 'thread');
    await m.expect({ type: 'delete', message_id: second.message_id, for: 'everyone', client_msg_id: randomUUID() }, 'ack');
    // Deleting a deleted message stores nothing: `ok`.
    await m.expect({ type: 'delete', message_id: second.message_id, for: 'everyone', client_msg_id: randomUUID() }, 'ok');
    // Neither can be edited or reacted to any more.
    const edit = await x.expect({ type: 'edit', message_id: first.message_id, client_msg_id: randomUUID(), body: text('back') }, 'error');
    assert.equal(edit.error.code, 'message_deleted');
    const react = await o.expect({ type: 'react', message_id: first.message_id, emoji: '👍', client_msg_id: randomUUID() }, 'error');
    assert.equal(react.error.code, 'message_deleted');
    const shown = (await history(x, threadId)).filter((message: any) => message.kind === 'text');
    assert.deepEqual(
      shown.map((message: any) => [message.id, message.deleted, message.body]),
      [
        [first.message_id, true, null],
        [second.message_id, true, null],
      ],
    );
    for (const socket of [o, m, x]) socket.close();
  });

  it('lets an owner delete for everyone a message the owner hid for themself', async () => {
    const owner = await signUp(server.process.url, 'owner8');
    const member = await signUp(server.process.url, 'member8');
    const o = (await connectAuthenticated(server.process.wsUrl, owner.token)).socket;
    const m = (await connectAuthenticated(server.process.wsUrl, member.token)).socket;
    const threadId = await createGroup(o, [member.userId]);
    const sent = await send(m, threadId, 'spam');
    await o.expect({ type: 'delete', message_id: sent.message_id, for: 'me' }, 'ok');
    const ack = await o.expect({ type: 'delete', message_id: sent.message_id, for: 'everyone', client_msg_id: randomUUID() }, 'ack');
    assert.equal(ack.duplicate, false);
    const shown = (await history(m, threadId)).filter((message: any) => message.kind === 'text');
    assert.deepEqual(shown.map((message: any) => [message.id, message.deleted, message.body]), [[sent.message_id, true, null]]);
    o.close();
    m.close();
  });

  it('acks a resent reaction as a duplicate after its target was hidden', async () => {
    const alice = await signUp(server.process.url, 'alice9');
    const bob = await signUp(server.process.url, 'bob9');
    const a = (await connectAuthenticated(server.process.wsUrl, alice.token)).socket;
    const threadId = await openDirect(a, bob.userId);
    const sent = await send(a, threadId, 'react, then hide');
    const reaction = { type: 'react', message_id: sent.message_id, emoji: '👍', client_msg_id: randomUUID() };
    const first = await a.expect(reaction, 'ack');
    assert.equal(first.duplicate, false);
    await a.expect({ type: 'delete', message_id: sent.message_id, for: 'me' }, 'ok');
    // The ack was lost: the outbox sends the reaction again.
    const again = await a.expect(reaction, 'ack');
    assert.equal(again.duplicate, true);
    assert.deepEqual([again.message_id, again.seq], [first.message_id, first.seq]);
    a.close();
  });

  it('refuses an edit, a delete or a reaction of a change message naming message_id', async () => {
    const alice = await signUp(server.process.url, 'alice10');
    const bob = await signUp(server.process.url, 'bob10');
    const a = (await connectAuthenticated(server.process.wsUrl, alice.token)).socket;
    const threadId = await openDirect(a, bob.userId);
    const sent = await send(a, threadId, 'react to me');
    const reaction = await a.expect({ type: 'react', message_id: sent.message_id, emoji: '👍', client_msg_id: randomUUID() }, 'ack');
    for (const request of [
      { type: 'react', message_id: reaction.message_id, emoji: '👍', client_msg_id: randomUUID() },
      { type: 'edit', message_id: reaction.message_id, client_msg_id: randomUUID(), body: text('no') },
      { type: 'delete', message_id: reaction.message_id, for: 'everyone', client_msg_id: randomUUID() },
    ]) {
      const refused = await a.expect(request, 'error');
      assert.equal(refused.error.code, 'invalid_field', request.type);
      assert.equal(refused.error.field, 'message_id', request.type);
    }
    a.close();
  });

  it('refuses a reaction that is not one emoji naming the field, and answers a toggle that changes nothing with ok', async () => {
    const alice = await signUp(server.process.url, 'alice5');
    const bob = await signUp(server.process.url, 'bob5');
    const a = (await connectAuthenticated(server.process.wsUrl, alice.token)).socket;
    const threadId = await openDirect(a, bob.userId);
    const sent = await send(a, threadId, 'react to me');
    for (const emoji of ['a', ':)', '👍👍', '👍 ']) {
      const refused = await a.expect({ type: 'react', message_id: sent.message_id, emoji, client_msg_id: randomUUID() }, 'error');
      assert.equal(refused.error.code, 'invalid_field', emoji);
      assert.equal(refused.error.field, 'emoji', emoji);
    }
    await a.expect({ type: 'react', message_id: sent.message_id, emoji: '🏳️‍🌈', client_msg_id: randomUUID() }, 'ack');
    await a.expect({ type: 'react', message_id: sent.message_id, emoji: '🏳️‍🌈', client_msg_id: randomUUID() }, 'ok');
    await a.expect({ type: 'react', message_id: sent.message_id, emoji: '👍🏽', on: false, client_msg_id: randomUUID() }, 'ok');
    assert.deepEqual((await history(a, threadId))[0].reactions, [{ emoji: '🏳️‍🌈', user_ids: [alice.userId] }]);
    a.close();
  });

  it('aggregates reactions toggled at once from several connections of several users', async () => {
    const users = await Promise.all([1, 2, 3, 4].map((n) => signUp(server.process.url, `reactor${n}`)));
    const sockets = await Promise.all(
      users.flatMap((user, n) => [
        connectAuthenticated(server.process.wsUrl, user.token).then((c) => ({ user: n, socket: c.socket })),
        logIn(server.process.url, `reactor${n + 1}`, 'correct horse', 'second')
          .then((second) => connectAuthenticated(server.process.wsUrl, second.token))
          .then((c) => ({ user: n, socket: c.socket })),
      ]),
    );
    const first = sockets[0]?.socket as TestSocket;
    const threadId = await createGroup(first, users.slice(1).map((user) => user.userId));
    const target = await send(first, threadId, 'react, everyone');
    // Before: every user has ❤️ on.
    for (const { user, socket } of sockets.filter((_, n) => n % 2 === 0)) {
      await socket.expect({ type: 'react', message_id: target.message_id, emoji: '❤️', client_msg_id: `heart-${user}` }, 'ack');
    }
    // At once, from all eight connections: 👍 and 🎉 on; users 0 and 1 take ❤️ back (from both their devices).
    const toggles = sockets.flatMap(({ user, socket }) => {
      const react = (emoji: string, on: boolean) => socket.request({ type: 'react', message_id: target.message_id, emoji, on, client_msg_id: randomUUID() });
      return [react('👍', true), react('🎉', true), ...(user < 2 ? [react('❤️', false)] : [])];
    });
    const replies = await Promise.all(toggles);
    const kinds = replies.map((reply: any) => reply.type);
    assert.deepEqual(
      { acks: kinds.filter((kind) => kind === 'ack').length, oks: kinds.filter((kind) => kind === 'ok').length, other: kinds.filter((kind) => kind !== 'ack' && kind !== 'ok') },
      { acks: 4 + 4 + 2, oks: 4 + 4 + 2, other: [] },
      'one change per user and emoji; the same toggle from the user\'s other device changes nothing',
    );
    const [message] = await history(first, threadId).then((messages) => messages.filter((m: any) => m.id === target.message_id));
    // Sorted on both sides: the four sign-ups ran at once, so their ids need not follow the array's order.
    const sorted = (ids: number[]) => [...ids].sort((x, y) => x - y);
    const ids = sorted(users.map((user) => user.userId));
    const byEmoji = Object.fromEntries(message.reactions.map((reaction: any) => [reaction.emoji, sorted(reaction.user_ids)]));
    assert.deepEqual(byEmoji, { '❤️': sorted(users.slice(2).map((user) => user.userId)), '👍': ids, '🎉': ids });
    assert.equal(message.reactions[0].emoji, '❤️', 'in first-reacted order');
    for (const { socket } of sockets) socket.close();
  });

  it('stores replies and mentions, and refuses a reply to another thread or a mention of a non-member naming the field', async () => {
    const alice = await signUp(server.process.url, 'alice6');
    const bob = await signUp(server.process.url, 'bob6');
    const carol = await signUp(server.process.url, 'carol6');
    const a = (await connectAuthenticated(server.process.wsUrl, alice.token)).socket;
    const withBob = await openDirect(a, bob.userId);
    const withCarol = await openDirect(a, carol.userId);
    const question = await send(a, withBob, 'question');
    const elsewhere = await send(a, withCarol, 'elsewhere');
    await send(a, withBob, '@bob answer', { reply_to: question.message_id, mentions: [bob.userId] });
    const [, answer] = await history(a, withBob);
    assert.equal(answer.reply_to, question.message_id);
    assert.deepEqual(answer.mentions, [bob.userId]);
    const badReply = await a.expect({ type: 'send', thread_id: withBob, client_msg_id: randomUUID(), body: text('x'), reply_to: elsewhere.message_id }, 'error');
    assert.equal(badReply.error.code, 'invalid_field');
    assert.equal(badReply.error.field, 'reply_to');
    const badMention = await a.expect({ type: 'send', thread_id: withBob, client_msg_id: randomUUID(), body: text('x'), mentions: [carol.userId] }, 'error');
    assert.equal(badMention.error.code, 'invalid_field');
    assert.equal(badMention.error.field, 'mentions');
    assert.equal((await history(a, withBob)).length, 2, 'nothing stored');
    a.close();
  });

  it('tells every device of the user of a message deleted for them, and leaves it out of their history only', async () => {
    const alice = await signUp(server.process.url, 'alice7');
    const bob = await signUp(server.process.url, 'bob7');
    const bobPhone = await logIn(server.process.url, 'bob7', 'correct horse', 'phone');
    const a = (await connectAuthenticated(server.process.wsUrl, alice.token)).socket;
    const b = (await connectAuthenticated(server.process.wsUrl, bob.token)).socket;
    const phone = (await connectAuthenticated(server.process.wsUrl, bobPhone.token)).socket;
    const threadId = await openDirect(a, bob.userId);
    const sent = await send(a, threadId, 'hide me');
    await b.expect({ type: 'delete', message_id: sent.message_id, for: 'me' }, 'ok');
    const event = await phone.nextEvent('hidden');
    assert.equal(event.items.length, 1);
    assert.deepEqual({ thread_id: event.items[0].thread_id, message_id: event.items[0].message_id }, { thread_id: threadId, message_id: sent.message_id });
    assert.deepEqual((await b.nextEvent('hidden')).items, event.items, 'the asking connection is told too');
    // Hiding it again changes nothing and tells no one.
    await b.expect({ type: 'delete', message_id: sent.message_id, for: 'me' }, 'ok');
    const listed = await phone.expect({ type: 'hidden', after: 0 }, 'hidden');
    assert.deepEqual(listed.items, event.items);
    assert.equal(listed.more, false);
    assert.deepEqual((await phone.expect({ type: 'hidden', after: event.items[0].id }, 'hidden')).items, []);
    assert.deepEqual(await history(phone, threadId), []);
    assert.deepEqual(
      (await history(a, threadId)).map((message: any) => message.id),
      [sent.message_id],
      'alice still sees it',
    );
    assert.equal(phone.drain('hidden').length, 0, 'one event per hidden message');
    for (const socket of [a, b, phone]) socket.close();
  });
});

describe('editing an end-to-end encrypted message', () => {
  it('takes a new envelope sealed to the thread\'s current devices exactly as a send, and refuses plaintext or a stale one', async () => {
    await loadSodium();
    const server = await start();
    try {
      const alice = await signUp(server.process.url, 'alice');
      const bob = await signUp(server.process.url, 'bob');
      const a = (await connectAuthenticated(server.process.wsUrl, alice.token)).socket;
      const b = (await connectAuthenticated(server.process.wsUrl, bob.token)).socket;
      const threadId = await openDirect(a, bob.userId);
      await approvedDevice(a, alice.userId, alice.deviceId, new TestAccount(alice.userId));
      await approvedDevice(b, bob.userId, bob.deviceId, new TestAccount(bob.userId));
      const both = [alice.deviceId, bob.deviceId];
      const sent = await a.expect({ type: 'send', thread_id: threadId, client_msg_id: randomUUID(), kind: 'e2e', body: envelope(alice.deviceId, both) }, 'ack');
      const editOf = (extra: Record<string, unknown>) => ({ type: 'edit', message_id: sent.message_id, client_msg_id: randomUUID(), kind: 'e2e', ...extra });

      const stale = await a.expect(editOf({ body: envelope(alice.deviceId, [alice.deviceId]) }), 'error');
      assert.deepEqual([stale.error.code, stale.error.missing_devices, stale.error.extra_devices], ['devices_changed', [bob.deviceId], []]);
      const forged = await a.expect(editOf({ body: envelope(bob.deviceId, both) }), 'error');
      assert.deepEqual([forged.error.code, forged.error.field], ['invalid_field', 'body']);
      const plain = await a.expect(editOf({ kind: 'text', body: text('in the clear') }), 'error');
      assert.deepEqual([plain.error.code, plain.error.field], ['invalid_field', 'kind']);

      const fresh = envelope(alice.deviceId, both);
      const edit = await a.expect(editOf({ body: fresh }), 'ack');
      const change = await messageAt(b, threadId, edit.seq);
      assert.deepEqual([change.kind, change.body, change.change], ['e2e', fresh, { type: 'edit', message_id: sent.message_id }]);
      const [shown] = await history(b, threadId);
      assert.deepEqual([shown.kind, shown.body, shown.edited_at], ['e2e', fresh, edit.created_at]);
      a.close();
      b.close();
    } finally {
      await server.process.stop();
    }
  });
});

describe('the edit window', () => {
  let server: Server;
  before(async () => {
    server = await start(1);
  });
  after(async () => {
    await server.process.stop();
  });

  it('refuses an edit once messages.edit_window_seconds have passed since the message was sent, saying the window', async () => {
    const alice = await signUp(server.process.url, 'alice');
    const bob = await signUp(server.process.url, 'bob');
    const a = (await connectAuthenticated(server.process.wsUrl, alice.token)).socket;
    const threadId = await openDirect(a, bob.userId);
    const sent = await send(a, threadId, 'quick');
    // The server's clock is the one that judges; ours runs alongside. Waiting until the window has surely passed is the condition, not a race.
    await delay(Math.max(0, sent.created_at + 1_100 - Date.now()));
    const refused = await a.expect({ type: 'edit', message_id: sent.message_id, client_msg_id: randomUUID(), body: text('too late') }, 'error');
    assert.equal(refused.error.code, 'edit_window_passed');
    assert.equal(refused.error.retryable, false);
    assert.match(refused.error.message, /1 second/);
    // Deleting has no window.
    await a.expect({ type: 'delete', message_id: sent.message_id, for: 'everyone', client_msg_id: randomUUID() }, 'ack');
    a.close();
  });
});

describe('erasing deleted text', () => {
  it('leaves neither a deleted body nor its earlier edit on disk: soon after the delete, and after a checkpoint', async () => {
    const server = await start();
    const alice = await signUp(server.process.url, 'alice');
    const bob = await signUp(server.process.url, 'bob');
    const a = (await connectAuthenticated(server.process.wsUrl, alice.token)).socket;
    const threadId = await openDirect(a, bob.userId);
    const original = `original-${randomUUID()}`;
    const edited = `edited-${randomUUID()}`;
    const kept = `kept-${randomUUID()}`;
    const sent = await send(a, threadId, `${original} marker text`);
    await send(a, threadId, `${kept} stays`);
    await a.expect({ type: 'edit', message_id: sent.message_id, client_msg_id: randomUUID(), body: text(`${edited} marker text`) }, 'ack');
    const file = join(server.data, 'chatd.db');
    const stored = (): string => [file, `${file}-wal`].filter((path) => existsSync(path)).map((path) => readFileSync(path).toString('latin1')).join('');
    // The markers are there to be found (else the test below could not fail).
    assert.ok(stored().includes(edited), 'the edit is stored');
    assert.ok(stored().includes(kept), 'the other message is stored');

    await a.expect({ type: 'delete', message_id: sent.message_id, for: 'everyone', client_msg_id: randomUUID() }, 'ack');
    // While the server runs, without anyone's checkpoint: the log is emptied soon after the erasure (polled until
    // then; never, on the old code, where the WAL kept the pages that held the text).
    for (let tries = 0; stored().includes(original) || stored().includes(edited); tries++) {
      assert.ok(tries < 200, 'the erased text is still on disk (database file or WAL) 10 s after the delete');
      await new Promise((done) => setTimeout(done, 50));
    }
    assert.ok(stored().includes(kept), 'the message not deleted is still there');
    a.close();
    assert.equal(await server.process.stop(), 0);
    const direct = new Database(file);
    direct.pragma('wal_checkpoint(TRUNCATE)');
    direct.close();
    const bytes = stored();
    assert.ok(bytes.includes(kept), 'the message not deleted is still there');
    assert.equal(bytes.includes(original), false, 'the original body is gone from the file (the table, the search index, free pages)');
    assert.equal(bytes.includes(edited), false, "the edit's body is gone from the file too");
  });
});
