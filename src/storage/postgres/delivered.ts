import type { CursorOutcome } from '../ports/messaging.js';
import { receiptAuthorsSql } from './receipt-authors.js';
import type { Sql } from './sql.js';

/**
 * Delivery acks (markDelivered) as a BatchedUnit: every ack of a turn in ONE
 * statement — the clamp to what the member may see, the devices' cursors,
 * their inbox rows up to them (and the counts), the users' delivered cursors,
 * and each moving ack's receipt authors (CursorOutcome.authors).
 * Acks are the most frequent write after sends (one per message received).
 */

export interface DeliveredInput {
  readonly userId: number;
  readonly deviceId: number;
  readonly threadId: number;
  readonly seq: number;
}

export type DeliveredOutcome = CursorOutcome<{ readonly seq: number }>;

const MARK_DELIVERED = `
WITH input AS (
  SELECT * FROM unnest($1::int[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[]) AS i(ord, user_id, device_id, thread_id, seq)
),
found AS (
  SELECT i.ord, i.user_id, i.device_id, i.thread_id, least(i.seq, coalesce(m.left_seq, t.last_seq)) AS up_to,
         m.left_seq IS NOT NULL AS left, m.delivered_seq, m.joined_seq
    FROM input i
    JOIN thread_members m ON m.thread_id = i.thread_id AND m.user_id = i.user_id
    JOIN threads t ON t.id = i.thread_id
),
per_device AS (SELECT device_id, thread_id, max(up_to) AS up_to FROM found GROUP BY device_id, thread_id),
per_user AS (SELECT thread_id, user_id, max(up_to) AS up_to FROM found GROUP BY thread_id, user_id),
cursors AS (
  INSERT INTO device_cursors (device_id, thread_id, delivered_seq) SELECT device_id, thread_id, up_to FROM per_device ORDER BY device_id, thread_id
  ON CONFLICT (device_id, thread_id) DO UPDATE SET delivered_seq = greatest(device_cursors.delivered_seq, excluded.delivered_seq)
),
acked AS (
  DELETE FROM inbox x USING per_device p
   WHERE x.device_id = p.device_id AND x.thread_id = p.thread_id AND x.seq <= p.up_to
  RETURNING x.device_id
),
counted AS (SELECT device_id, count(*) AS n FROM acked GROUP BY device_id),
-- Rows that several units update, locked in key order and in the sends' order of tables: no deadlock between nodes.
locked_devices AS (SELECT id FROM devices WHERE id IN (SELECT device_id FROM counted) ORDER BY id FOR NO KEY UPDATE),
counted_down AS (
  UPDATE devices d SET inbox_count = greatest(0, d.inbox_count - c.n)
    FROM counted c JOIN locked_devices l ON l.id = c.device_id
   WHERE d.id = c.device_id
  RETURNING d.id
),
-- After the devices (the condition on counted_down runs it to completion first), as the sends lock them:
-- threads, then devices, then memberships; only those the ack moves (checked again under the lock).
locked_members AS (
  SELECT m.thread_id, m.user_id FROM thread_members m JOIN per_user p ON p.thread_id = m.thread_id AND p.user_id = m.user_id
   WHERE (SELECT count(*) FROM counted_down) >= 0 AND m.delivered_seq < p.up_to
   ORDER BY m.thread_id, m.user_id FOR NO KEY UPDATE OF m
),
moved AS (
  UPDATE thread_members m SET delivered_seq = p.up_to
    FROM per_user p JOIN locked_members l ON l.thread_id = p.thread_id AND l.user_id = p.user_id
   WHERE m.thread_id = p.thread_id AND m.user_id = p.user_id AND m.delivered_seq < p.up_to
  RETURNING m.thread_id, m.user_id
),
-- The user's delivered cursor as each ack finds it (the acks before it in the batch as committed first),
-- or where what they may see starts: the receipt's authors are of the messages after it.
ranged AS (
  SELECT f.*, greatest(f.delivered_seq, f.joined_seq,
           coalesce(max(f.up_to) OVER (PARTITION BY f.thread_id, f.user_id ORDER BY f.ord ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)) AS after
    FROM found f
),
told AS (
  SELECT r.*, EXISTS (SELECT 1 FROM moved v WHERE v.thread_id = r.thread_id AND v.user_id = r.user_id) AS moved FROM ranged r
)
SELECT r.ord, r.up_to, r.left, r.delivered_seq, r.moved,
       CASE WHEN r.moved AND NOT r.left AND r.up_to > r.after
         THEN ${receiptAuthorsSql({ threadId: 'r.thread_id', mover: 'r.user_id', after: 'r.after', upTo: 'r.up_to' })} END AS authors
  FROM told r`;

/** The BatchedUnit's run: one outcome per input, in order, each as if the acks before it in the batch had committed first. */
export async function markDeliveredBatch(sql: Sql, inputs: readonly DeliveredInput[]): Promise<DeliveredOutcome[]> {
  const { rows } = await sql.query<{ ord: number; up_to: number; left: boolean; delivered_seq: number; moved: boolean; authors: Array<number | string> | null }>(MARK_DELIVERED, [
    inputs.map((_, index) => index),
    inputs.map((input) => input.userId),
    inputs.map((input) => input.deviceId),
    inputs.map((input) => input.threadId),
    inputs.map((input) => input.seq),
  ]);
  const found = new Map(rows.map((row) => [row.ord, row]));
  // The user's delivered cursor as each ack of the batch finds it: the one before it moved it, or not.
  const cursors = new Map<string, number>();
  return inputs.map((input, index): DeliveredOutcome => {
    const row = found.get(index);
    if (!row) return { kind: 'refused', reason: 'no_thread' };
    const key = `${input.threadId}:${input.userId}`;
    const before = cursors.get(key) ?? row.delivered_seq;
    cursors.set(key, Math.max(before, row.up_to));
    // A former member's cursors still move (their unread counts), but nobody is told.
    const moved = row.moved && row.up_to > before && !row.left;
    return { kind: 'done', seq: row.up_to, moved, authors: moved ? (row.authors ?? []).map(Number) : [] };
  });
}
