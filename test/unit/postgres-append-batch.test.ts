import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AppendOutcome, ChangeInput, SendInput } from '../../src/storage/ports/messaging.js';
import { PostgresAdminStorage } from '../../src/storage/postgres/admin.js';
import type { PgDatabase } from '../../src/storage/postgres/database.js';
import { markDeliveredBatch } from '../../src/storage/postgres/delivered.js';
import { appendBatch } from '../../src/storage/postgres/messaging.js';
import type { Sql } from '../../src/storage/postgres/sql.js';
import { openPostgresMessaging } from '../helpers/postgres-messaging.js';

/**
 * The batch paths of sends and delivery acks on a real PostgreSQL: what the
 * contract cannot see through the port — how many statements a batch takes,
 * an overflow inside a batch, a batch that waited for another node's lock.
 */

const NOW = 1_000_000;
const settings = (maxMessages = 1000) => ({ maxMessages, readDiffusionAbove: 50, push: { apns: true, fcm: false } });

/** `work` in one transaction of its own, counting its statements. */
async function counted<T>(db: PgDatabase, work: (sql: Sql) => Promise<T>): Promise<{ value: T; statements: number }> {
  const client = await db.pool.connect();
  let statements = 0;
  const sql: Sql = {
    async query(text, values) {
      statements++;
      const result = await client.query(text, values as unknown[]);
      return { rows: result.rows, rowCount: result.rowCount ?? 0 };
    },
  };
  try {
    await client.query('BEGIN');
    const value = await work(sql);
    await client.query('COMMIT');
    return { value, statements };
  } finally {
    client.release();
  }
}

async function world() {
  const f = await openPostgresMessaging({ readDiffusionAbove: 50 });
  const [alice, bob, carol] = [await f.user('alice'), await f.user('bob'), await f.user('carol')];
  const [aliceDevice, bobDevice] = [await f.device(alice), await f.device(bob)];
  const direct = (await f.threads.openDirect({ userIds: [alice, bob], createdBy: alice, now: NOW })).threadId;
  const { threadId: group } = await f.threads.createGroup({
    title: 'g',
    actor: { userId: alice, deviceId: aliceDevice },
    memberIds: [bob],
    e2eRequired: false,
    event: { event: 'group_created' },
    now: NOW,
  });
  let n = 0;
  const text = (input: Partial<SendInput> = {}): SendInput => ({
    threadId: direct,
    senderUserId: alice,
    senderDeviceId: aliceDevice,
    clientMsgId: `c${++n}`,
    content: { kind: 'text' },
    bodyJson: '{"text":"hi"}',
    now: NOW,
    requireE2eEverywhere: false,
    ...input,
  });
  return { f, alice, bob, carol, aliceDevice, bobDevice, direct, group, text };
}

describe('sends on PostgreSQL, batched', () => {
  it('takes two statements for a batch of any size: one to lock and check, one to write', async () => {
    const w = await world();
    const one = await counted(w.f.db, (sql) => appendBatch(sql, settings(), [w.text()]));
    assert.equal(one.value[0]?.kind, 'stored');
    assert.equal(one.statements, 2);
    const inputs = Array.from({ length: 60 }, (_, i) =>
      i % 3 === 0 ? w.text({ threadId: w.group }) : i % 3 === 1 ? w.text({ senderUserId: w.bob, senderDeviceId: w.bobDevice }) : w.text({ clientMsgId: 'again' }),
    );
    const many = await counted(w.f.db, (sql) => appendBatch(sql, settings(), inputs));
    const kinds = many.value.map((o) => o.kind);
    assert.deepEqual([kinds.filter((k) => k === 'stored').length, kinds.filter((k) => k === 'duplicate').length], [41, 19]);
    assert.equal(many.statements, 2);
    const groupPage = await w.f.history.page({ userId: w.bob, threadId: w.group, anchor: { after: 0 }, size: 100 });
    assert.deepEqual(groupPage?.messages.map((m) => m.seq), Array.from({ length: 21 }, (_, i) => i + 1), 'the system message, then 20 sends');
    const pushed = await w.f.db.read.query<{ thread_id: number; seq: number }>(
      'SELECT p.thread_id, m.seq FROM push_threads p JOIN messages m ON m.id = p.message_id ORDER BY p.thread_id',
    );
    assert.deepEqual(pushed.rows, [
      { thread_id: w.direct, seq: 22 },
      { thread_id: w.group, seq: 21 },
    ], "each thread's push note names its newest message");
  });

  it('overflows an inbox the batch takes past its bound: dropped whole, the device flagged, one statement more', async () => {
    const w = await world();
    const { value, statements } = await counted(w.f.db, (sql) => appendBatch(sql, settings(3), Array.from({ length: 5 }, () => w.text())));
    assert.ok(value.every((o) => o.kind === 'stored'));
    assert.equal(statements, 3);
    assert.deepEqual(await w.f.inbox(w.bobDevice), []);
    assert.equal(await w.f.overflowed(w.bobDevice), true);
    const count = await w.f.db.read.query<{ inbox_count: number }>('SELECT inbox_count FROM devices WHERE id = $1', [w.bobDevice]);
    assert.equal(count.rows[0]?.inbox_count, 0);
  });

  it("writes an inbox row for a live device when the message's id is not above its live mark (the handover's backfill would miss it)", async () => {
    const w = await world();
    const live = await w.f.device(w.bob);
    await w.f.goLive(live);
    stored(await w.f.messaging.appendMessage(w.text()));
    assert.deepEqual(await w.f.inbox(live), [], 'live since before the message: no row');
    // As when a message's id was taken before another node marked the device live, and committed after it.
    await w.f.db.read.query('UPDATE devices SET live_after = $2 WHERE id = $1', [live, 1_000_000]);
    const outcome = await w.f.messaging.appendMessage(w.text());
    stored(outcome);
    assert.deepEqual(await w.f.inbox(live), [outcome.kind === 'stored' && outcome.message.id]);
  });

  it('takes one statement for a batch of delivery acks, each decided as if the ones before it had committed', async () => {
    const w = await world();
    const bobPhone = await w.f.device(w.bob);
    await counted(w.f.db, (sql) => appendBatch(sql, settings(), Array.from({ length: 4 }, () => w.text())));
    const acks = [
      { userId: w.bob, deviceId: w.bobDevice, threadId: w.direct, seq: 2 },
      { userId: w.bob, deviceId: bobPhone, threadId: w.direct, seq: 3 },
      { userId: w.bob, deviceId: w.bobDevice, threadId: w.direct, seq: 1 },
      { userId: w.bob, deviceId: w.bobDevice, threadId: w.direct, seq: 99 },
      { userId: w.carol, deviceId: w.bobDevice, threadId: w.direct, seq: 1 },
    ];
    const { value, statements } = await counted(w.f.db, (sql) => markDeliveredBatch(sql, acks));
    assert.equal(statements, 1);
    assert.deepEqual(value, [
      { kind: 'done', seq: 2, moved: true, authors: [w.alice] },
      { kind: 'done', seq: 3, moved: true, authors: [w.alice] },
      { kind: 'done', seq: 1, moved: false, authors: [] },
      { kind: 'done', seq: 4, moved: true, authors: [w.alice] },
      { kind: 'refused', reason: 'no_thread' },
    ]);
    const left = await w.f.db.read.query<{ device_id: number; seq: number }>('SELECT device_id, seq FROM inbox WHERE thread_id = $1 ORDER BY device_id, seq', [w.direct]);
    assert.deepEqual(left.rows, [{ device_id: bobPhone, seq: 4 }], 'the laptop acked up to 4, the phone up to 3');
    const counts = await w.f.db.read.query<{ id: number; inbox_count: number }>('SELECT id, inbox_count FROM devices WHERE id = ANY($1) ORDER BY id', [[w.bobDevice, bobPhone]]);
    assert.deepEqual(counts.rows, [
      { id: w.bobDevice, inbox_count: 1 },
      { id: bobPhone, inbox_count: 1 },
    ], "what is left: the laptop's row of the group's first message, the phone's of seq 4");
    const cursor = await w.f.db.read.query<{ delivered_seq: number }>('SELECT delivered_seq FROM thread_members WHERE thread_id = $1 AND user_id = $2', [w.direct, w.bob]);
    assert.equal(cursor.rows[0]?.delivered_seq, 4);
  });

  it('refuses a send that waited for another node removing its sender: the removal committed first', async () => {
    const w = await world();
    // Another node's change of the group, held open: the thread's row locked, bob gone at seq 2.
    const client = await w.f.db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT 1 FROM threads WHERE id = $1 FOR NO KEY UPDATE', [w.group]);
      await client.query(
        `INSERT INTO messages (thread_id, seq, sender_user_id, sender_device_id, client_msg_id, kind, body, created_at)
         VALUES ($1, 2, $2, $3, 'system:removed', 'system', '{}', 1)`,
        [w.group, w.alice, w.aliceDevice],
      );
      await client.query('UPDATE threads SET last_seq = 2 WHERE id = $1', [w.group]);
      await client.query('UPDATE thread_members SET left_seq = 2 WHERE thread_id = $1 AND user_id = $2', [w.group, w.bob]);
      const send = w.f.messaging.appendMessage(w.text({ threadId: w.group, senderUserId: w.bob, senderDeviceId: w.bobDevice }));
      await waitForLockWait(w.f.db);
      await client.query('COMMIT');
      assert.deepEqual(await send, { kind: 'refused', reason: 'not_member' });
    } finally {
      client.release();
    }
    const after = stored(await w.f.messaging.appendMessage(w.text({ threadId: w.group })));
    assert.equal(after, 3, 'the next send follows the removal');
  });
});

describe('changes on PostgreSQL, batched with the sends', () => {
  const change = (w: Awaited<ReturnType<typeof world>>, request: ChangeInput['change'], input: Partial<ChangeInput> = {}): ChangeInput => ({
    threadId: w.direct,
    senderUserId: w.alice,
    senderDeviceId: w.aliceDevice,
    clientMsgId: `change-${Math.random()}`,
    now: NOW + 1,
    requireE2eEverywhere: false,
    change: request,
    ...input,
  });

  it('takes two statements more only for a batch with changes, replies or mentions: one to read and lock what they name, one to write the targets', async () => {
    const w = await world();
    const first = await counted(w.f.db, (sql) => appendBatch(sql, settings(), [w.text(), w.text()]));
    const [a, b] = first.value.map((o) => (o.kind === 'stored' ? o.message.id : -1)) as [number, number];
    const reply = await counted(w.f.db, (sql) => appendBatch(sql, settings(), [w.text({ replyTo: a, mentions: [w.bob] })]));
    assert.equal(reply.statements, 4, "a reply with a mention: read what they name, queue the mention's pushes (push is configured); no target written");
    assert.equal(reply.value[0]?.kind === 'stored' && reply.value[0].message.replyTo, a);
    const changes = await counted(w.f.db, (sql) =>
      appendBatch(sql, settings(), [
        change(w, { type: 'reaction', targetId: a, emoji: '👍', on: true }),
        change(w, { type: 'reaction', targetId: a, emoji: '👍', on: true }, { senderUserId: w.bob, senderDeviceId: w.bobDevice }),
        change(w, { type: 'edit', targetId: b, content: { kind: 'text' }, bodyJson: '{"text":"edited"}', editWindowMs: 0 }),
        change(w, { type: 'delete', targetId: b }),
        change(w, { type: 'reaction', targetId: b, emoji: '👍', on: true }),
        w.text(),
      ]),
    );
    assert.equal(changes.statements, 4);
    assert.deepEqual(
      changes.value.map((o) => (o.kind === 'stored' ? [o.message.seq, o.message.change?.type ?? 'send'] : o)),
      [[4, 'reaction'], [5, 'reaction'], [6, 'edit'], [7, 'delete'], { kind: 'refused', reason: 'message_deleted' }, [8, 'send']],
      'the batch decides one after another: the reaction after the delete sees it',
    );
    const rows = await w.f.db.read.query<{ seq: number; body: string; reactions: string | null; deleted_at: number | null; uncounted: number }>(
      'SELECT seq, body, reactions, deleted_at, uncounted FROM messages WHERE thread_id = $1 ORDER BY seq',
      [w.direct],
    );
    assert.deepEqual(rows.rows, [
      { seq: 1, body: '{"text":"hi"}', reactions: `[{"emoji":"👍","user_ids":[${w.alice},${w.bob}]}]`, deleted_at: null, uncounted: 0 },
      { seq: 2, body: 'null', reactions: null, deleted_at: NOW + 1, uncounted: 0 },
      { seq: 3, body: '{"text":"hi"}', reactions: null, deleted_at: null, uncounted: 0 },
      { seq: 4, body: 'null', reactions: null, deleted_at: null, uncounted: 1 },
      { seq: 5, body: 'null', reactions: null, deleted_at: null, uncounted: 2 },
      { seq: 6, body: 'null', reactions: null, deleted_at: null, uncounted: 3 },
      { seq: 7, body: 'null', reactions: null, deleted_at: null, uncounted: 4 },
      { seq: 8, body: '{"text":"hi"}', reactions: null, deleted_at: null, uncounted: 4 },
    ], "the batch's own edit of the deleted message is erased with it");
    const thread = await w.f.db.read.query<{ last_seq: number; uncounted: number; last_message_at: number }>('SELECT last_seq, uncounted, last_message_at FROM threads WHERE id = $1', [w.direct]);
    assert.deepEqual(thread.rows, [{ last_seq: 8, uncounted: 4, last_message_at: NOW }]);
  });

  it('moves neither the push note nor the thread\'s activity for a batch of change rows only', async () => {
    const w = await world();
    const sent = await w.f.messaging.appendMessage(w.text({ now: NOW }));
    const id = sent.kind === 'stored' ? sent.message.id : -1;
    const before = await w.f.db.read.query('SELECT thread_id, message_id FROM push_threads ORDER BY thread_id');
    await counted(w.f.db, (sql) => appendBatch(sql, settings(), [change(w, { type: 'reaction', targetId: id, emoji: '🎉', on: true }, { now: NOW + 5, senderUserId: w.bob, senderDeviceId: w.bobDevice })]));
    assert.deepEqual((await w.f.db.read.query('SELECT thread_id, message_id FROM push_threads ORDER BY thread_id')).rows, before.rows);
    const thread = await w.f.db.read.query<{ last_message_at: number; uncounted: number }>('SELECT last_message_at, uncounted FROM threads WHERE id = $1', [w.direct]);
    assert.deepEqual(thread.rows, [{ last_message_at: NOW, uncounted: 1 }]);
    assert.equal(await w.f.messaging.totalUnread(w.alice), 0, 'a reaction to her message is not unread');
    assert.equal(await new PostgresAdminStorage(w.f.db).badgeCount(w.alice), 0, "nor in the admin's badge (the same read)");
    stored(await w.f.messaging.appendMessage(w.text({ senderUserId: w.bob, senderDeviceId: w.bobDevice, now: NOW + 6 })));
    assert.equal(await new PostgresAdminStorage(w.f.db).badgeCount(w.alice), 1, 'a message after it is');
  });

  it('queues no notification for change rows a device going offline did not acknowledge', async () => {
    const w = await world();
    const phone = await w.f.device(w.bob);
    await w.f.db.read.query(`UPDATE devices SET push_platform = 'apns', push_token = 'tok' WHERE id = $1`, [phone]);
    await w.f.delivery.goLive(phone);
    const sent = await w.f.messaging.appendMessage(w.text());
    const message = sent.kind === 'stored' ? sent.message : assert.fail(JSON.stringify(sent));
    await w.f.messaging.markDelivered({ userId: w.bob, deviceId: phone, threadId: w.direct, seq: message.seq });
    stored(await w.f.messaging.appendMessage(change(w, { type: 'edit', targetId: message.id, content: { kind: 'text' }, bodyJson: '"again"', editWindowMs: 0 })));
    stored(await w.f.messaging.appendMessage(change(w, { type: 'reaction', targetId: message.id, emoji: '👍', on: true })));
    const rules = { readDiffusionAbove: 50, maxMessages: 1000, push: { apns: true, fcm: false }, now: NOW + 10 };
    const queued = async () => (await w.f.db.read.query<{ message_id: number }>('SELECT message_id FROM push_queue WHERE device_id = $1', [phone])).rows.map((row) => row.message_id);
    await w.f.delivery.goOffline(phone, rules);
    assert.deepEqual(await queued(), []);
    assert.deepEqual((await w.f.delivery.inboxPage(phone, 0, 10)).messages.map((m) => m.change?.type), ['edit', 'reaction'], 'the handover keeps them for the inbox');
    await w.f.delivery.goLive(phone);
    const after = await w.f.messaging.appendMessage(w.text());
    await w.f.delivery.goOffline(phone, rules);
    assert.deepEqual(await queued(), [after.kind === 'stored' && after.message.id], 'a message after them does');
  });

  it('aggregates reaction toggles of one message racing from two nodes: every one counted once', async () => {
    const w = await world();
    const sent = await w.f.messaging.appendMessage(w.text({ threadId: w.group }));
    const target = sent.kind === 'stored' ? sent.message.id : -1;
    const other = await w.f.otherNode();
    const emoji = ['👍', '🎉', '😀', '🙂', '🚀', '❤️', '🔥', '👀'];
    const toggles = emoji.flatMap((e, n) => [
      (n % 2 === 0 ? w.f.messaging : other.messaging).appendMessage(
        change(w, { type: 'reaction', targetId: target, emoji: e, on: true }, { threadId: w.group }),
      ),
      (n % 2 === 0 ? other.messaging : w.f.messaging).appendMessage(
        change(w, { type: 'reaction', targetId: target, emoji: e, on: true }, { threadId: w.group, senderUserId: w.bob, senderDeviceId: w.bobDevice }),
      ),
    ]);
    const outcomes = await Promise.all(toggles);
    assert.ok(outcomes.every((o) => o.kind === 'stored'), JSON.stringify(outcomes));
    const row = await w.f.db.read.query<{ reactions: string }>('SELECT reactions FROM messages WHERE id = $1', [target]);
    const reactions = JSON.parse(row.rows[0]?.reactions ?? '[]') as Array<{ emoji: string; user_ids: number[] }>;
    assert.deepEqual(reactions.map((r) => r.emoji).sort(), [...emoji].sort());
    assert.ok(reactions.every((r) => [...r.user_ids].sort((a, b) => a - b).join() === [w.alice, w.bob].sort((a, b) => a - b).join()));
    const seqs = outcomes.map((o) => (o.kind === 'stored' ? o.message.seq : -1)).sort((a, b) => a - b);
    assert.deepEqual(seqs, Array.from({ length: 16 }, (_, i) => i + 3), 'after the system message and the send, no gaps');
  });
});

function stored(outcome: AppendOutcome): number {
  assert.equal(outcome.kind, 'stored', JSON.stringify(outcome));
  return outcome.kind === 'stored' ? outcome.message.seq : -1;
}

/** Until a statement of this database waits for a row lock (the send's batch, behind the held transaction). */
async function waitForLockWait(db: PgDatabase): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { rows } = await db.read.query<{ n: number }>(
      `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
    );
    if ((rows[0]?.n ?? 0) > 0) return;
    if (Date.now() > deadline) throw new Error('no statement waited for the lock');
    await new Promise((done) => setTimeout(done, 5));
  }
}
