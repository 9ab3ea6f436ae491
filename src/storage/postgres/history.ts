import type { HistoryAnchor, HistoryStorage, StoredPage, StoredSync, SyncInput } from '../ports/history.js';
import type { StoredMessage } from '../ports/messaging.js';
import { visibleRange } from '../ports/visibility.js';
import type { PgDatabase } from './database.js';
import type { Row } from './sql.js';
import { messageColumns, messageOf } from './append.js';

const COLUMNS = messageColumns('m');

/** A message `x` the user (parameter `user`) did not delete for themselves. */
function notHidden(user: string): string {
  return `NOT EXISTS (SELECT 1 FROM hidden_messages h WHERE h.user_id = ${user} AND h.message_id = x.id)`;
}

/** What sync gives of a message `x` to the user `$1`: change rows too, but neither a hidden message nor the changes of one. */
const SYNCED = `${notHidden('$1')}
  AND (x.target_id IS NULL OR NOT EXISTS (SELECT 1 FROM hidden_messages h WHERE h.user_id = $1 AND h.message_id = x.target_id))`;

/** What history and jump show of a message `x` to the user `$2`: content and system messages in their latest state, never change rows. */
const SHOWN = `x.target_id IS NULL AND ${notHidden('$2')}`;

/** A page's rows: SHOWN, or with $8 (a gap being closed) what sync gives to the user `$2`, change rows included. */
const PAGED = `(CASE WHEN $8::boolean
  THEN ${notHidden('$2')} AND (x.target_id IS NULL OR NOT EXISTS (SELECT 1 FROM hidden_messages h WHERE h.user_id = $2 AND h.message_id = x.target_id))
  ELSE ${SHOWN} END)`;

/**
 * A page in one statement (one snapshot): the range (from, to] the user may see, split at a seq (before $3,
 * after $5 + 1, around $7, else to + 1; clamped into from + 1 .. to + 1), and the rows (PAGED) nearest the
 * split on each side: up to $4 + 1 below it and $6 + 1 from it up. The one row more on a side says whether
 * there is more there. Nothing when the user was never a member.
 */
const PAGE = `
WITH r AS (
  SELECT tm.joined_seq AS from_seq, coalesce(tm.left_seq, t.last_seq) AS to_seq
    FROM thread_members tm JOIN threads t ON t.id = tm.thread_id WHERE tm.thread_id = $1 AND tm.user_id = $2
),
b AS (
  SELECT from_seq, to_seq,
         least(greatest(CASE WHEN $7::bigint IS NOT NULL THEN least($7::bigint, to_seq)
                             WHEN $5::bigint IS NOT NULL THEN $5::bigint + 1
                             ELSE least($3::bigint, to_seq + 1) END, from_seq + 1), to_seq + 1) AS split
    FROM r
),
older AS (
  SELECT 'older' AS side, x.* FROM b, messages x
   WHERE x.thread_id = $1 AND x.seq < b.split AND x.seq > b.from_seq AND ${PAGED} ORDER BY x.seq DESC LIMIT $4::bigint + 1
),
newer AS (
  SELECT 'newer' AS side, x.* FROM b, messages x
   WHERE x.thread_id = $1 AND x.seq >= b.split AND x.seq <= b.to_seq AND ${PAGED} ORDER BY x.seq LIMIT $6::bigint + 1
)
SELECT b.from_seq, b.to_seq, m.side, ${COLUMNS}
  FROM b LEFT JOIN LATERAL (SELECT * FROM older UNION ALL SELECT * FROM newer) m ON true
 ORDER BY m.seq`;

/** HistoryStorage on PostgreSQL: each read in one snapshot (REPEATABLE READ, READ ONLY). */
export class PostgresHistoryStorage implements HistoryStorage {
  constructor(private readonly db: PgDatabase) {}

  async page(input: { userId: number; threadId: number; anchor: HistoryAnchor; size: number }): Promise<StoredPage | undefined> {
    const { anchor, size } = input;
    // The older side (seq below the split, nearest it first) and the newer side (from the split up), each
    // with its limit: one side for before/after/latest, both around a message (newer trimmed below). Each
    // side reads one row more (the other side too, with limit 0): whether there is more there.
    let older: { bound: number | null; limit: number } = { bound: null, limit: 0 };
    let newer: { bound: number | null; limit: number } = { bound: null, limit: 0 };
    let around: number | null = null;
    if ('after' in anchor) newer = { bound: anchor.after, limit: size };
    else if ('before' in anchor) older = { bound: anchor.before, limit: size };
    else if ('around' in anchor) {
      around = anchor.around;
      older = { bound: null, limit: Math.floor((size - 1) / 2) };
      newer = { bound: null, limit: size };
    } else older = { bound: null, limit: size };
    const { rows } = await this.db.read.query<StoredMessage & Row & { from_seq: number; to_seq: number; side: 'older' | 'newer' | null }>(PAGE, [
      input.threadId,
      input.userId,
      older.bound,
      Math.max(0, older.limit),
      newer.bound,
      Math.max(0, newer.limit),
      around,
      'after' in anchor && anchor.changes === true,
    ]);
    const first = rows[0];
    if (!first) return undefined;
    // Each side came with one row more than it may give: the nearest the split are kept.
    const olderRows = rows.filter((row) => row.side === 'older').map(messageOf);
    const newerRows = rows.filter((row) => row.side === 'newer').map(messageOf);
    const olderKept = olderRows.slice(olderRows.length - Math.min(olderRows.length, Math.max(0, older.limit)));
    const newerKept = newerRows.slice(0, Math.max(0, Math.min(newer.limit, size - olderKept.length)));
    return {
      messages: [...olderKept, ...newerKept],
      from: first.from_seq,
      to: first.to_seq,
      moreBefore: olderRows.length > olderKept.length,
      moreAfter: newerRows.length > newerKept.length,
    };
  }

  async locate(userId: number, messageId: number, options?: { readonly anyRow?: boolean }): Promise<{ threadId: number; seq: number; from: number; to: number } | undefined> {
    // One statement: one snapshot. A change row is not in history, nor a message the user hid: nothing to jump to (unless anyRow).
    const { rows } = await this.db.read.query<{ thread_id: number; seq: number; joined_seq: number; left_seq: number | null; last_seq: number }>(
      `SELECT x.thread_id, x.seq, tm.joined_seq, tm.left_seq, t.last_seq
         FROM messages x
         JOIN thread_members tm ON tm.thread_id = x.thread_id AND tm.user_id = $2
         JOIN threads t ON t.id = x.thread_id
        WHERE x.id = $1 AND ${options?.anyRow === true ? 'true' : SHOWN}`,
      [messageId, userId],
    );
    const row = rows[0];
    if (!row) return undefined;
    return { threadId: row.thread_id, seq: row.seq, ...visibleRange({ joinedSeq: row.joined_seq, leftSeq: row.left_seq }, row.last_seq) };
  }

  async sync(input: SyncInput): Promise<StoredSync[]> {
    const { db } = this;
    // The catch-up the overflow flag asks for: the flag goes first (committed), then the read. A message
    // stored between the two gets an inbox row (the device is no longer flagged) and may be in the
    // answer too (clients dedupe); cleared after the read, a message stored in between would be in
    // neither. A read that fails after the clear is an error the client retries its sync on.
    const flagged = await db.read.query('SELECT 1 FROM devices WHERE id = $1 AND inbox_overflow', [input.deviceId]);
    if (flagged.rowCount > 0) await db.writes.submit((sql) => sql.query('UPDATE devices SET inbox_overflow = false WHERE id = $1', [input.deviceId]));
    const cursors = [...(input.cursors ?? new Map<number, number>())];
    // Every thread of the user with a page of what the device lacks, in one statement (one snapshot):
    // the device's cursor is its own (the request's) where it gave one, else its acks. Change rows are
    // in it (the device applies them in seq order); messages the user hid are not. One row more than a
    // page says whether there is more (hidden rows at the end are not).
    const { rows } = await db.read.query<StoredMessage & Row & { thread: number; visible_to: number; message: boolean }>(
      `WITH given AS (SELECT * FROM unnest($3::bigint[], $4::bigint[]) AS g(thread_id, seq)),
       threads_of AS (
         SELECT t.id, coalesce(tm.left_seq, t.last_seq) AS visible_to,
                greatest(coalesce(g.seq, c.delivered_seq, 0), tm.joined_seq) AS cursor,
                coalesce(t.last_message_at, t.created_at) AS active_at
           FROM thread_members tm
           JOIN threads t ON t.id = tm.thread_id
           LEFT JOIN given g ON g.thread_id = t.id
           LEFT JOIN device_cursors c ON c.device_id = $2 AND c.thread_id = t.id
          WHERE tm.user_id = $1
       )
       SELECT o.id AS thread, o.visible_to, m.id IS NOT NULL AS message, ${COLUMNS}
         FROM threads_of o
         LEFT JOIN LATERAL (
           SELECT * FROM messages x WHERE x.thread_id = o.id AND x.seq > o.cursor AND x.seq <= o.visible_to AND ${SYNCED} ORDER BY x.seq LIMIT $5::bigint + 1
         ) m ON true
        WHERE o.cursor < o.visible_to
        ORDER BY o.active_at DESC, o.id DESC, m.seq`,
      [input.userId, input.deviceId, cursors.map(([threadId]) => threadId), cursors.map(([, seq]) => seq), input.pageMax],
    );
    const threads: StoredSync[] = [];
    let current: { threadId: number; lastSeq: number; messages: StoredMessage[] } | undefined;
    for (const row of rows) {
      if (current?.threadId !== row.thread) {
        if (current) threads.push(synced(current, input.pageMax));
        current = { threadId: row.thread, lastSeq: row.visible_to, messages: [] };
      }
      if (row.message) current.messages.push(messageOf(row));
    }
    if (current) threads.push(synced(current, input.pageMax));
    return threads;
  }
}

function synced(thread: { threadId: number; lastSeq: number; messages: StoredMessage[] }, pageMax: number): StoredSync {
  return { ...thread, messages: thread.messages.slice(0, pageMax), hasMore: thread.messages.length > pageMax };
}
