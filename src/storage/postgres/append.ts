import { randomUUID } from 'node:crypto';
import type { AppendSettings } from '../sqlite/append.js';
import type { MessageKind, StoredMessage } from '../ports/messaging.js';
import type { ThreadEvent } from '../ports/threads.js';
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
 */

export type { AppendSettings };

/** The message columns as the ports name them (`m`: the table's alias). */
export function messageColumns(m: string): string {
  return `${m}.id, ${m}.thread_id AS "threadId", ${m}.seq, ${m}.sender_user_id AS "senderUserId", ${m}.sender_device_id AS "senderDeviceId",
          ${m}.client_msg_id AS "clientMsgId", ${m}.kind, ${m}.body AS "bodyJson", ${m}.created_at AS "createdAt", ${m}.attachments AS "attachmentsJson"`;
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
}

const WRITE_MESSAGES = `
WITH planned AS (
  SELECT * FROM unnest($1::int[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::bigint[], $13::text[])
    AS p(ord, thread_id, seq, sender_user_id, sender_device_id, client_msg_id, kind, body, created_at, attachments)
),
inserted AS (
  -- In batch order: within a thread, ids grow with seqs (the inbox pages by id).
  INSERT INTO messages (thread_id, seq, sender_user_id, sender_device_id, client_msg_id, kind, body, created_at, attachments)
  SELECT thread_id, seq, sender_user_id, sender_device_id, client_msg_id, kind, body, created_at, attachments FROM planned ORDER BY ord
  RETURNING id, thread_id, seq, sender_user_id, sender_device_id, kind, created_at
),
bumped AS (
  UPDATE threads t SET last_seq = l.seq, last_message_at = l.created_at
    FROM (SELECT DISTINCT ON (thread_id) thread_id, seq, created_at FROM planned ORDER BY thread_id, seq DESC) l
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
  INSERT INTO push_threads (thread_id, message_id, sender_user_id, created_at)
  SELECT DISTINCT ON (thread_id) thread_id, id, sender_user_id, created_at FROM inserted
   WHERE $11::boolean AND kind <> 'system' ORDER BY thread_id, seq DESC
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
    settings.push.apns || settings.push.fcm,
    settings.maxMessages,
    column((m) => m.attachments?.json ?? null),
  ]);
  const refs = messages.flatMap((m) => (m.attachments?.uploadIds ?? []).map((uploadId) => [uploadId, m.threadId, m.seq] as const));
  if (refs.length > 0) {
    await sql.query(WRITE_REFS, [refs.map((ref) => ref[0]), refs.map((ref) => ref[1]), refs.map((ref) => ref[2])]);
  }
  // Past the bound a device's inbox goes whole, and it syncs by cursors (rare: one more round trip).
  const overflowed = (rows[0]?.overflowed ?? []).map(Number);
  if (overflowed.length > 0) await sql.query(OVERFLOW, [overflowed]);
  const ids = new Map(rows.map((row) => [`${row.thread_id}:${row.seq}`, Number(row.id)]));
  return messages.map((m) => {
    const id = ids.get(`${m.threadId}:${m.seq}`);
    if (id === undefined) throw new Error(`message ${m.threadId}:${m.seq} was not stored`);
    return id;
  });
}

/**
 * The fields of a message no change has touched (no reply, mentions, edit,
 * deletion, reactions; not a change row): what every message is until this
 * engine stores changes (issue 21, PostgreSQL's part).
 */
export const UNCHANGED = { replyTo: null, mentionsJson: null, editedAt: null, deletedAt: null, reactionsJson: null, targetId: null, change: null } as const;

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
    ...UNCHANGED,
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
