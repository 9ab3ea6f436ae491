import type { HistoryAnchor, HistoryStorage, StoredPage, StoredSync, SyncInput } from '../ports/history.js';
import type { StoredMessage } from '../ports/messaging.js';
import { visibleRange } from '../ports/visibility.js';
import type { PgDatabase } from './database.js';
import type { Row, Sql } from './sql.js';
import { messageColumns } from './append.js';

const COLUMNS = messageColumns('m');
const AFTER = `SELECT ${COLUMNS} FROM messages m WHERE m.thread_id = $1 AND m.seq > $2 AND m.seq <= $3 ORDER BY m.seq LIMIT $4`;
const BEFORE = `SELECT ${COLUMNS} FROM messages m WHERE m.thread_id = $1 AND m.seq < $2 AND m.seq > $3 ORDER BY m.seq DESC LIMIT $4`;

/** HistoryStorage on PostgreSQL: each read in one snapshot (REPEATABLE READ, READ ONLY). */
export class PostgresHistoryStorage implements HistoryStorage {
  constructor(private readonly db: PgDatabase) {}

  page(input: { userId: number; threadId: number; anchor: HistoryAnchor; size: number }): Promise<StoredPage | undefined> {
    return this.db.snapshot(async (sql) => {
      const { threadId, anchor, size } = input;
      const range = await seenRange(sql, threadId, input.userId);
      if (!range) return undefined;
      const { from, to } = range;
      let messages: StoredMessage[];
      if ('after' in anchor) {
        messages = await after(sql, threadId, Math.max(anchor.after, from), to, size);
      } else if ('before' in anchor) {
        messages = await before(sql, threadId, Math.min(anchor.before, to + 1), from, size);
      } else if ('around' in anchor) {
        const center = Math.min(Math.max(anchor.around, from + 1), to);
        const older = await before(sql, threadId, center, from, Math.floor((size - 1) / 2));
        messages = [...older, ...(await after(sql, threadId, center - 1, to, size - older.length))];
      } else {
        messages = await before(sql, threadId, to + 1, from, size);
      }
      return { messages, from, to };
    });
  }

  async locate(userId: number, messageId: number): Promise<{ threadId: number; seq: number; from: number; to: number } | undefined> {
    // One statement: one snapshot.
    const { rows } = await this.db.read.query<{ thread_id: number; seq: number; joined_seq: number; left_seq: number | null; last_seq: number }>(
      `SELECT m.thread_id, m.seq, tm.joined_seq, tm.left_seq, t.last_seq
         FROM messages m
         JOIN thread_members tm ON tm.thread_id = m.thread_id AND tm.user_id = $2
         JOIN threads t ON t.id = m.thread_id
        WHERE m.id = $1`,
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
    // the device's cursor is its own (the request's) where it gave one, else its acks.
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
           SELECT * FROM messages x WHERE x.thread_id = o.id AND x.seq > o.cursor AND x.seq <= o.visible_to ORDER BY x.seq LIMIT $5
         ) m ON true
        WHERE o.cursor < o.visible_to
        ORDER BY o.active_at DESC, o.id DESC, m.seq`,
      [input.userId, input.deviceId, cursors.map(([threadId]) => threadId), cursors.map(([, seq]) => seq), input.pageMax],
    );
    const threads: StoredSync[] = [];
    let current: { threadId: number; lastSeq: number; messages: StoredMessage[] } | undefined;
    for (const row of rows) {
      if (current?.threadId !== row.thread) {
        if (current) threads.push(synced(current));
        current = { threadId: row.thread, lastSeq: row.visible_to, messages: [] };
      }
      if (row.message) current.messages.push(messageOf(row));
    }
    if (current) threads.push(synced(current));
    return threads;
  }
}

function synced(thread: { threadId: number; lastSeq: number; messages: StoredMessage[] }): StoredSync {
  return { ...thread, hasMore: (thread.messages.at(-1)?.seq ?? thread.lastSeq) < thread.lastSeq };
}

/** The message columns of a row that carries others too. */
function messageOf(row: StoredMessage): StoredMessage {
  const { id, threadId, seq, senderUserId, senderDeviceId, clientMsgId, kind, bodyJson, createdAt } = row;
  return { id, threadId, seq, senderUserId, senderDeviceId, clientMsgId, kind, bodyJson, createdAt };
}

/** The seqs (from, to] the user may see of the thread; undefined if never a member. */
async function seenRange(sql: Sql, threadId: number, userId: number): Promise<{ from: number; to: number } | undefined> {
  const { rows } = await sql.query<{ joined_seq: number; left_seq: number | null; last_seq: number }>(
    `SELECT tm.joined_seq, tm.left_seq, t.last_seq FROM thread_members tm JOIN threads t ON t.id = tm.thread_id
      WHERE tm.thread_id = $1 AND tm.user_id = $2`,
    [threadId, userId],
  );
  const row = rows[0];
  return row && visibleRange({ joinedSeq: row.joined_seq, leftSeq: row.left_seq }, row.last_seq);
}

/** Up to `limit` messages with afterSeq < seq <= maxSeq, ascending. */
async function after(sql: Sql, threadId: number, afterSeq: number, maxSeq: number, limit: number): Promise<StoredMessage[]> {
  if (limit <= 0) return [];
  return (await sql.query<StoredMessage & Row>(AFTER, [threadId, afterSeq, maxSeq, limit])).rows.map(messageOf);
}

/** Up to `limit` messages with minSeq < seq < beforeSeq, ascending (the ones nearest beforeSeq). */
async function before(sql: Sql, threadId: number, beforeSeq: number, minSeq: number, limit: number): Promise<StoredMessage[]> {
  if (limit <= 0) return [];
  return (await sql.query<StoredMessage & Row>(BEFORE, [threadId, beforeSeq, minSeq, limit])).rows.map(messageOf).reverse();
}
