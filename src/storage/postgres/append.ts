import { randomUUID } from 'node:crypto';
import { anyPushPlatform } from '../ports/push.js';
import type { AppendSettings } from '../sqlite/append.js';
import type { MessageChange, MessageKind, StoredMessage } from '../ports/messaging.js';
import type { ThreadEvent } from '../ports/threads.js';
import { queueMentionPushes } from './push.js';
import type { Sql } from './sql.js';

/**
 * The writes every message takes on PostgreSQL, user-sent or system, for a
 * whole batch at once: the rows, the threads' last seqs, inbox rows for the
 * devices not live (with their counts), the push notes, the senders' read
 * cursors — ONE statement whatever the batch's size (data-modifying CTEs), plus
 * one more only when an inbox overflows and one more only when a message of
 * the batch carries attachments (their attachment_refs rows). The caller holds the row locks of
 * the messages' threads (taken in id order) and read their last seqs under
 * them, so the seqs it planned follow on without gaps.
 *
 * A change row (an edit, a delete, a reaction: MSG-SPEC §1) goes through the
 * same statement: it gets a seq, inbox rows and the sender's read cursor like
 * any message, but no push note, it does not move threads.last_message_at,
 * and it counts in `uncounted` (the thread's, and the running count on each
 * row) so that unread leaves it out. Its target's new state is the caller's
 * to write (changes.ts).
 */

export type { AppendSettings };

/** The message columns as the ports name them (`m`: the table's alias); `change` is parsed by the driver (json). */
export function messageColumns(m: string): string {
  return `${m}.id, ${m}.thread_id AS "threadId", ${m}.seq, ${m}.sender_user_id AS "senderUserId", ${m}.sender_device_id AS "senderDeviceId",
          ${m}.client_msg_id AS "clientMsgId", ${m}.kind, ${m}.body AS "bodyJson", ${m}.created_at AS "createdAt", ${m}.attachments AS "attachmentsJson",
          ${m}.reply_to AS "replyTo", ${m}.mentions AS "mentionsJson", ${m}.edited_at AS "editedAt", ${m}.deleted_at AS "deletedAt",
          ${m}.reactions AS "reactionsJson", ${m}.target_id AS "targetId", ${m}.change::json AS "change"`;
}

/** The same columns as one JSON object (for a message nested in another row); numbers stay numbers, `change` an object. */
export function messageObject(x: string): string {
  return `json_build_object('id', ${x}.id, 'threadId', ${x}.thread_id, 'seq', ${x}.seq, 'senderUserId', ${x}.sender_user_id,
             'senderDeviceId', ${x}.sender_device_id, 'clientMsgId', ${x}.client_msg_id, 'kind', ${x}.kind, 'bodyJson', ${x}.body,
             'createdAt', ${x}.created_at, 'attachmentsJson', ${x}.attachments, 'replyTo', ${x}.reply_to, 'mentionsJson', ${x}.mentions,
             'editedAt', ${x}.edited_at, 'deletedAt', ${x}.deleted_at, 'reactionsJson', ${x}.reactions, 'targetId', ${x}.target_id,
             'change', ${x}.change::json)`;
}

/** The message fields of a row that carries other columns too (selected with messageColumns). */
export function messageOf(row: StoredMessage): StoredMessage {
  const { id, threadId, seq, senderUserId, senderDeviceId, clientMsgId, kind, bodyJson, createdAt, attachmentsJson } = row;
  const { replyTo, mentionsJson, editedAt, deletedAt, reactionsJson, targetId, change } = row;
  return { id, threadId, seq, senderUserId, senderDeviceId, clientMsgId, kind, bodyJson, createdAt, attachmentsJson, replyTo, mentionsJson, editedAt, deletedAt, reactionsJson, targetId, change };
}

/** A message to store, its seq taken under its thread's lock. */
export interface NewMessage {
  readonly threadId: number;
  readonly seq: number;
  readonly senderUserId: number;
  readonly senderDeviceId: number;
  readonly clientMsgId: string;
  readonly kind: MessageKind;
  readonly bodyJson: string;
  /** What the message carries: messages.attachments, and one attachment_refs row per upload id. */
  readonly attachments?: { readonly json: string; readonly uploadIds: readonly string[] } | undefined;
  readonly now: number;
  /** A send's reply_to and mentions (compact JSON), an edit row's mentions. */
  readonly replyTo?: number | undefined;
  readonly mentionsJson?: string | undefined;
  /** A change row's target and what it did. */
  readonly targetId?: number | undefined;
  readonly change?: MessageChange | undefined;
}

const WRITE_MESSAGES = `
WITH planned AS (
  SELECT * FROM unnest($1::int[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::bigint[], $13::text[],
                       $14::bigint[], $15::text[], $16::bigint[], $17::text[])
    AS p(ord, thread_id, seq, sender_user_id, sender_device_id, client_msg_id, kind, body, created_at, attachments, reply_to, mentions, target_id, change)
),
inserted AS (
  -- In batch order: within a thread, ids grow with seqs (the inbox pages by id). uncounted: the thread's
  -- change rows up to this one (the thread's row is locked by the caller, so t.uncounted is its latest).
  INSERT INTO messages (thread_id, seq, sender_user_id, sender_device_id, client_msg_id, kind, body, created_at, attachments, reply_to, mentions, target_id, change, uncounted)
  SELECT p.thread_id, p.seq, p.sender_user_id, p.sender_device_id, p.client_msg_id, p.kind, p.body, p.created_at, p.attachments, p.reply_to, p.mentions, p.target_id, p.change,
         t.uncounted + sum((p.change IS NOT NULL)::int) OVER (PARTITION BY p.thread_id ORDER BY p.seq)
    FROM planned p JOIN threads t ON t.id = p.thread_id ORDER BY p.ord
  RETURNING id, thread_id, seq, sender_user_id, sender_device_id, kind, created_at, change
),
bumped AS (
  -- A change row moves the seq, not the thread's activity time: it is not the thread's last message.
  UPDATE threads t SET last_seq = l.seq, last_message_at = coalesce(l.content_at, t.last_message_at), uncounted = t.uncounted + l.changes
    FROM (SELECT thread_id, max(seq) AS seq, (array_agg(created_at ORDER BY seq DESC) FILTER (WHERE change IS NULL))[1] AS content_at,
                 count(change) AS changes
            FROM planned GROUP BY thread_id) l
   WHERE t.id = l.thread_id
),
fanned AS (
  -- Devices marked live get no row, unless the message's id is not above their live mark: a message
  -- whose id was taken before the mark but committed after it is not in the handover's backfill.
  INSERT INTO inbox (device_id, message_id, thread_id, seq, created_at)
  SELECT d.id, i.id, i.thread_id, i.seq, i.created_at
    FROM inserted i
    JOIN thread_members m ON m.thread_id = i.thread_id AND m.left_seq IS NULL
    JOIN devices d ON d.user_id = m.user_id
   WHERE i.thread_id = ANY($10::bigint[]) AND d.revoked_at IS NULL AND NOT d.inbox_overflow
     AND (d.live_after IS NULL OR d.live_after >= i.id) AND d.id <> i.sender_device_id
  RETURNING device_id
),
counted AS (SELECT device_id, count(*) AS n FROM fanned GROUP BY device_id),
-- Recipient devices locked in id order, as every unit that locks several does (no deadlock between nodes).
locked AS (SELECT id FROM devices WHERE id IN (SELECT device_id FROM counted) ORDER BY id FOR NO KEY UPDATE),
counted_up AS (
  UPDATE devices d SET inbox_count = d.inbox_count + c.n
    FROM counted c JOIN locked l ON l.id = c.device_id
   WHERE d.id = c.device_id
  RETURNING d.id, d.inbox_count
),
noted AS (
  -- Change rows notify nobody (an edit's new mentions neither).
  INSERT INTO push_threads (thread_id, message_id, sender_user_id, created_at)
  SELECT DISTINCT ON (thread_id) thread_id, id, sender_user_id, created_at FROM inserted
   WHERE $11::boolean AND kind <> 'system' AND change IS NULL ORDER BY thread_id, seq DESC
  ON CONFLICT (thread_id) DO UPDATE SET message_id = excluded.message_id, sender_user_id = excluded.sender_user_id, created_at = excluded.created_at
),
readers AS (SELECT thread_id, sender_user_id AS user_id, max(seq) AS seq FROM planned GROUP BY thread_id, sender_user_id),
-- Every unit that locks several of these takes threads, then devices, then memberships (the condition on
-- counted_up runs it to completion first), each in key order: no deadlock between nodes.
locked_readers AS (
  SELECT m.thread_id, m.user_id FROM thread_members m JOIN readers r ON r.thread_id = m.thread_id AND r.user_id = m.user_id
   WHERE (SELECT count(*) FROM counted_up) >= 0 AND m.read_seq < r.seq
   ORDER BY m.thread_id, m.user_id FOR NO KEY UPDATE OF m
),
read AS (
  -- Whoever writes has read what came before.
  UPDATE thread_members m SET read_seq = r.seq
    FROM readers r JOIN locked_readers l ON l.thread_id = r.thread_id AND l.user_id = r.user_id
   WHERE m.thread_id = r.thread_id AND m.user_id = r.user_id AND m.read_seq < r.seq
)
SELECT i.thread_id, i.seq, i.id, (SELECT array_agg(id) FROM counted_up WHERE inbox_count > $12) AS overflowed FROM inserted i`;

// Which message references which upload (who may read it follows from these rows): one statement for
// the batch's every attachment, run only when a message of the batch carries some.
const WRITE_REFS = `
INSERT INTO attachment_refs (upload_id, thread_id, seq)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])`;

const OVERFLOW = `
WITH dropped AS (DELETE FROM inbox WHERE device_id = ANY($1::bigint[]))
UPDATE devices SET inbox_overflow = true, inbox_count = 0 WHERE id = ANY($1::bigint[])`;

/**
 * Writes the messages (seqs already taken, their threads locked by the
 * caller); `inboxThreads`: those at or below read diffusion. Returns the ids,
 * in the order of `messages`.
 */
export async function writeMessages(sql: Sql, settings: AppendSettings, messages: readonly NewMessage[], inboxThreads: readonly number[]): Promise<number[]> {
  if (messages.length === 0) return [];
  const column = <T>(pick: (m: NewMessage) => T): T[] => messages.map(pick);
  const { rows } = await sql.query<{ thread_id: number; seq: number; id: number; overflowed: Array<number | string> | null }>(WRITE_MESSAGES, [
    messages.map((_, index) => index),
    column((m) => m.threadId),
    column((m) => m.seq),
    column((m) => m.senderUserId),
    column((m) => m.senderDeviceId),
    column((m) => m.clientMsgId),
    column((m) => m.kind),
    column((m) => m.bodyJson),
    column((m) => m.now),
    inboxThreads,
    anyPushPlatform(settings.push),
    settings.maxMessages,
    column((m) => m.attachments?.json ?? null),
    column((m) => m.replyTo ?? null),
    column((m) => m.mentionsJson ?? null),
    column((m) => m.targetId ?? null),
    column((m) => (m.change ? JSON.stringify(m.change) : null)),
  ]);
  const refs = messages.flatMap((m) => (m.attachments?.uploadIds ?? []).map((uploadId) => [uploadId, m.threadId, m.seq] as const));
  if (refs.length > 0) {
    await sql.query(WRITE_REFS, [refs.map((ref) => ref[0]), refs.map((ref) => ref[1]), refs.map((ref) => ref[2])]);
  }
  // Past the bound a device's inbox goes whole, and it syncs by cursors (rare: one more round trip).
  const overflowed = (rows[0]?.overflowed ?? []).map(Number);
  if (overflowed.length > 0) await sql.query(OVERFLOW, [overflowed]);
  const ids = new Map(rows.map((row) => [`${row.thread_id}:${row.seq}`, Number(row.id)]));
  const stored = messages.map((m) => {
    const id = ids.get(`${m.threadId}:${m.seq}`);
    if (id === undefined) throw new Error(`message ${m.threadId}:${m.seq} was not stored`);
    return id;
  });
  // Last, after the rows above are locked: mentions reach members who muted the thread (push.ts).
  await queueMentionPushes(sql, settings.push, messages, stored);
  return stored;
}

/** The message as the ports return it, once stored under `id`. */
export function storedMessage(message: NewMessage, id: number): StoredMessage {
  return {
    id,
    threadId: message.threadId,
    seq: message.seq,
    senderUserId: message.senderUserId,
    senderDeviceId: message.senderDeviceId,
    clientMsgId: message.clientMsgId,
    kind: message.kind,
    bodyJson: message.bodyJson,
    createdAt: message.now,
    attachmentsJson: message.attachments?.json ?? null,
    replyTo: message.replyTo ?? null,
    mentionsJson: message.mentionsJson ?? null,
    editedAt: null,
    deletedAt: null,
    reactionsJson: null,
    targetId: message.targetId ?? null,
    change: message.change ?? null,
  };
}

/**
 * Locks the thread's row (held to commit: no other unit takes a seq of it or
 * changes its members meanwhile) and reads what storing a message needs.
 * Undefined when there is no such thread.
 */
export async function lockThread(sql: Sql, threadId: number): Promise<{ lastSeq: number; e2eRequired: boolean; memberCount: number } | undefined> {
  const { rows } = await sql.query<{ last_seq: number; e2e_required: boolean; member_count: number }>(
    `SELECT t.last_seq, t.e2e_required,
            (SELECT count(*) FROM thread_members c WHERE c.thread_id = t.id AND c.left_seq IS NULL) AS member_count
       FROM threads t WHERE t.id = $1 FOR NO KEY UPDATE OF t`,
    [threadId],
  );
  const row = rows[0];
  return row && { lastSeq: Number(row.last_seq), e2eRequired: row.e2e_required, memberCount: Number(row.member_count) };
}

/**
 * A system message (member added, renamed, …) in a thread the caller locked
 * (lockThread) after any membership change of the same unit, so that
 * `memberCount` counts the members who receive it.
 */
export async function writeSystemMessage(
  sql: Sql,
  settings: AppendSettings,
  actor: { readonly userId: number; readonly deviceId: number },
  thread: { readonly id: number; readonly lastSeq: number; readonly memberCount: number },
  event: ThreadEvent,
  now: number,
): Promise<StoredMessage> {
  const message: NewMessage = {
    threadId: thread.id,
    seq: thread.lastSeq + 1,
    senderUserId: actor.userId,
    senderDeviceId: actor.deviceId,
    clientMsgId: `system:${randomUUID()}`,
    kind: 'system',
    bodyJson: JSON.stringify(event),
    now,
  };
  const [id] = await writeMessages(sql, settings, [message], thread.memberCount <= settings.readDiffusionAbove ? [thread.id] : []);
  return storedMessage(message, id as number);
}
