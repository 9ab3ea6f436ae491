import type { AppendMessageInput } from '../ports/messaging.js';
import type { Related } from './append-plan.js';
import { NOTHING_RELATED } from './append-plan.js';
import type { TargetState } from './change-plan.js';
import type { Sql } from './sql.js';

/**
 * The two statements a batch takes only when it carries changes, replies or
 * mentions (an ordinary send takes neither): RELATED reads what their rules
 * need, APPLY writes the targets' new state.
 */

/**
 * Run after the check statement locked the batch's threads: the change
 * targets locked FOR NO KEY UPDATE in id order, so that two toggles of one
 * message (on any node) read and rewrite its reactions one after the other
 * (NO KEY: the inbox and hidden_messages rows that reference a message take
 * KEY SHARE on it, which need not wait); the replies' targets (unlocked:
 * a change to one takes its thread's lock, which this unit holds); and which
 * of the users mentioned are current members. Only messages of the batch's
 * threads are read (one of another thread is no target, and is not locked:
 * every message this locks is in a thread the unit locked first, so the lock
 * order stays threads, then messages). Rows locked after a wait come
 * back in their latest version (READ COMMITTED), and this statement starts
 * after the threads' locks, so everything it reads is current.
 */
const RELATED = `
WITH locked AS (
  SELECT id, thread_id, seq, sender_user_id, kind, target_id, created_at, body, mentions, attachments, edited_at, deleted_at, reactions,
         EXISTS (SELECT 1 FROM thread_members tm WHERE tm.thread_id = messages.thread_id AND tm.left_seq IS NULL AND tm.joined_seq >= messages.seq) AS unseen
    FROM messages WHERE id = ANY($1::bigint[]) AND thread_id = ANY($5::bigint[]) ORDER BY id FOR NO KEY UPDATE
),
replied AS (
  SELECT id, thread_id, seq, sender_user_id, kind, target_id, created_at, body, mentions, attachments, edited_at, deleted_at, reactions, false AS unseen
    FROM messages WHERE id = ANY($2::bigint[]) AND id <> ALL($1::bigint[]) AND thread_id = ANY($5::bigint[])
),
named AS (
  SELECT m.thread_id, m.user_id FROM thread_members m JOIN unnest($3::bigint[], $4::bigint[]) AS n(thread_id, user_id)
    ON m.thread_id = n.thread_id AND m.user_id = n.user_id
   WHERE m.left_seq IS NULL
)
SELECT (SELECT coalesce(json_agg(x), '[]') FROM (SELECT * FROM locked UNION ALL SELECT * FROM replied) x) AS messages,
       (SELECT coalesce(json_agg(json_build_array(thread_id, user_id)), '[]') FROM named) AS members`;

interface MessageJsonRow {
  id: number;
  thread_id: number;
  seq: number;
  sender_user_id: number;
  kind: TargetState['kind'];
  target_id: number | null;
  created_at: number;
  body: string;
  mentions: string | null;
  attachments: string | null;
  edited_at: number | null;
  deleted_at: number | null;
  reactions: string | null;
  /** A current member joined at or after it (read for change targets; false for replies). */
  unseen: boolean;
}

/** What the batch's changes, replies and mentions name; no statement when none does. */
export async function readRelated(sql: Sql, inputs: readonly AppendMessageInput[]): Promise<Related> {
  const targets = new Set<number>();
  const replies = new Set<number>();
  const mentioned: Array<[number, number]> = [];
  for (const input of inputs) {
    if (input.change) {
      targets.add(input.change.targetId);
      if (input.change.type === 'edit') for (const userId of input.change.mentions ?? []) mentioned.push([input.threadId, userId]);
    } else {
      if (input.replyTo !== undefined) replies.add(input.replyTo);
      for (const userId of input.mentions ?? []) mentioned.push([input.threadId, userId]);
    }
  }
  if (targets.size === 0 && replies.size === 0 && mentioned.length === 0) return NOTHING_RELATED;
  const { rows } = await sql.query<{ messages: MessageJsonRow[]; members: Array<[number, number]> }>(RELATED, [
    [...targets].sort((a, b) => a - b),
    [...replies],
    mentioned.map(([threadId]) => threadId),
    mentioned.map(([, userId]) => userId),
    [...new Set(inputs.map((input) => input.threadId))],
  ]);
  const row = rows[0] ?? { messages: [], members: [] };
  const members = new Map<number, Set<number>>();
  for (const [threadId, userId] of row.members) {
    const set = members.get(threadId) ?? new Set<number>();
    set.add(userId);
    members.set(threadId, set);
  }
  return { messages: new Map(row.messages.map((message) => [message.id, toTarget(message)])), members };
}

function toTarget(row: MessageJsonRow): TargetState {
  return {
    id: row.id,
    threadId: row.thread_id,
    seq: row.seq,
    senderUserId: row.sender_user_id,
    unseenByMembers: row.unseen,
    kind: row.kind,
    isChange: row.target_id !== null,
    createdAt: row.created_at,
    bodyJson: row.body,
    mentionsJson: row.mentions,
    attachmentsJson: row.attachments,
    editedAt: row.edited_at,
    deletedAt: row.deleted_at,
    reactionsJson: row.reactions,
  };
}

/**
 * The targets' new state, in one statement after the change rows are in:
 * each target's row as the batch left it; for those deleted for everyone,
 * their edit rows' bodies and mentions erased too (the batch's own among them) and their
 * attachment_refs deleted (the uploads are then collected after the grace).
 */
const APPLY = `
WITH targets AS (
  UPDATE messages m SET body = c.body, mentions = c.mentions, attachments = c.attachments, edited_at = c.edited_at,
                        deleted_at = c.deleted_at, reactions = c.reactions
    FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[])
      AS c(id, body, mentions, attachments, edited_at, deleted_at, reactions)
   WHERE m.id = c.id
),
erased AS (
  UPDATE messages SET body = 'null', mentions = NULL WHERE target_id = ANY($8::bigint[]) AND change::jsonb ->> 'type' = 'edit'
),
unreferenced AS (
  DELETE FROM attachment_refs r USING messages m WHERE m.id = ANY($8::bigint[]) AND r.thread_id = m.thread_id AND r.seq = m.seq
)
SELECT 1`;

/** Writes the targets' states the plan left them in; no statement when the batch changed none. */
export async function applyChanges(sql: Sql, targets: readonly TargetState[], deleted: readonly number[]): Promise<void> {
  if (targets.length === 0) return;
  const column = <T>(pick: (t: TargetState) => T): T[] => targets.map(pick);
  await sql.query(APPLY, [
    column((t) => t.id),
    column((t) => t.bodyJson),
    column((t) => t.mentionsJson),
    column((t) => t.attachmentsJson),
    column((t) => t.editedAt),
    column((t) => t.deletedAt),
    column((t) => t.reactionsJson),
    deleted,
  ]);
}
