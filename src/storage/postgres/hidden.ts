import type { HideOutcome, StoredHidden } from '../ports/messaging.js';
import type { Sql } from './sql.js';

/** Namespace of the advisory locks that put one user's hidden ids in commit order (the other key: the user id's hash). */
const HIDDEN_LOCKS = 0x68696465; // "hide"

/** A message the user may hide: one of a thread they are or were in, within what they may see, not a change row. */
const HIDE = `
WITH target AS (
  SELECT x.id, x.thread_id FROM messages x
    JOIN thread_members tm ON tm.thread_id = x.thread_id AND tm.user_id = $1
    JOIN threads t ON t.id = x.thread_id
   WHERE x.id = $2 AND x.target_id IS NULL AND x.seq > tm.joined_seq AND x.seq <= coalesce(tm.left_seq, t.last_seq)
),
inserted AS (
  INSERT INTO hidden_messages (user_id, message_id, thread_id, hidden_at) SELECT $1, id, thread_id, $3 FROM target
  ON CONFLICT (user_id, message_id) DO NOTHING
  RETURNING id, thread_id AS "threadId", message_id AS "messageId"
)
SELECT (SELECT count(*) FROM target) > 0 AS found, (SELECT row_to_json(i) FROM inserted i) AS hidden`;

/**
 * "Delete for me", as a unit (the caller's transaction). A device that was
 * away asks for the user's hidden messages after the highest id it knows, so
 * one user's ids must become visible in id order: an identity draws its id
 * at insert, not at commit, so two hides of one user on two nodes could
 * commit 6 before 5 and a device that saw 6 would never learn of 5. A
 * transaction-scoped lock per user, taken before the id is drawn and held to
 * commit, makes the next hide of that user draw its id only after this one
 * committed (other users' hides do not wait; a hash collision only makes two
 * users' hides take turns).
 */
export async function hideMessage(sql: Sql, input: { readonly userId: number; readonly messageId: number; readonly now: number }): Promise<HideOutcome> {
  await sql.query('SELECT pg_advisory_xact_lock($1, hashint8($2::bigint))', [HIDDEN_LOCKS, input.userId]);
  const { rows } = await sql.query<{ found: boolean; hidden: StoredHidden | null }>(HIDE, [input.userId, input.messageId, input.now]);
  const row = rows[0];
  if (!row?.found) return { kind: 'refused', reason: 'no_message' };
  if (row.hidden) return { kind: 'hidden', hidden: row.hidden, already: false };
  // Hidden before (under the lock, so that row has committed and this statement sees it).
  const existing = await sql.query<StoredHidden & Record<string, unknown>>(
    'SELECT id, thread_id AS "threadId", message_id AS "messageId" FROM hidden_messages WHERE user_id = $1 AND message_id = $2',
    [input.userId, input.messageId],
  );
  const hidden = existing.rows[0];
  if (!hidden) throw new Error(`hidden message ${input.messageId} of user ${input.userId} vanished`);
  return { kind: 'hidden', hidden, already: true };
}

/** The user's hidden messages after `after` (an id), oldest first. */
export async function hiddenAfter(sql: Sql, userId: number, after: number, limit: number): Promise<{ items: StoredHidden[]; more: boolean }> {
  const { rows } = await sql.query<StoredHidden & Record<string, unknown>>(
    'SELECT id, thread_id AS "threadId", message_id AS "messageId" FROM hidden_messages WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3',
    [userId, after, limit + 1],
  );
  return { items: rows.slice(0, limit).map(({ id, threadId, messageId }) => ({ id: Number(id), threadId: Number(threadId), messageId: Number(messageId) })), more: rows.length > limit };
}
