import type {
  AppendMessageInput,
  AppendOutcome,
  CursorOutcome,
  HideOutcome,
  MemberReceiptCursors,
  Membership,
  MessagingStorage,
  ReceiptsOutcome,
  StoredHidden,
  StoredMessage,
} from '../ports/messaging.js';
import { receiptLists } from '../ports/messaging.js';
import { unreadCount, visibleRange } from '../ports/visibility.js';
import type { BatchedUnit } from './batcher.js';
import type { PgDatabase } from './database.js';
import type { MemberRole, ThreadKind } from '../ports/threads.js';
import type { Sql } from './sql.js';
import { type AppendSettings, messageObject, storedMessage, writeMessages } from './append.js';
import { type AppendCheck, planAppends } from './append-plan.js';
import { applyChanges, readRelated } from './changes.js';
import { type DeliveredInput, type DeliveredOutcome, markDeliveredBatch } from './delivered.js';
import { hiddenAfter, hideMessage } from './hidden.js';
import { receiptAuthorsSql } from './receipt-authors.js';
import { UNREAD_END, uncountedAt, unreadSql, unreadStart } from './unread.js';

/**
 * MessagingStorage on PostgreSQL. Appends (sends and changes) are one
 * BatchedUnit: every append of a turn goes to one `run` in the batcher's
 * group transaction, which takes two round trips whatever the batch's size —
 * lock the threads (id order) and check everything (token, membership,
 * thread, e2e devices, idempotency) in one statement, write everything in one
 * more (see append.ts) — plus one when a thread changed while the batch
 * waited for its lock, one when an inbox overflows, and, only for a batch
 * with changes, replies or mentions, one to read (and lock) what they name
 * and one to write the targets' new state (changes.ts). Delivery acks are
 * batched too (one statement: delivered.ts).
 */
export class PostgresMessagingStorage implements MessagingStorage {
  private readonly sends: BatchedUnit<AppendMessageInput, AppendOutcome>;
  private readonly acks: BatchedUnit<DeliveredInput, DeliveredOutcome> = { name: 'markDelivered', run: markDeliveredBatch };

  constructor(
    private readonly db: PgDatabase,
    private readonly settings: AppendSettings,
  ) {
    this.sends = { name: 'appendMessage', run: (sql, inputs) => appendBatch(sql, this.settings, inputs) };
  }

  appendMessage(input: AppendMessageInput): Promise<AppendOutcome> {
    return this.db.writes.submitBatched(this.sends, input);
  }

  markDelivered(input: DeliveredInput): Promise<DeliveredOutcome> {
    return this.db.writes.submitBatched(this.acks, input);
  }

  markRead(input: { userId: number; threadId: number; seq: number }): Promise<CursorOutcome<{ readSeq: number; unread: number; totalUnread: number }>> {
    return this.db.writes.submit(async (sql): Promise<CursorOutcome<{ readSeq: number; unread: number; totalUnread: number }>> => {
      const { rows } = await sql.query<{
        joined_seq: number;
        left_seq: number | null;
        read_seq: number;
        last_seq: number;
        moved: boolean;
        elsewhere: number | null;
        uncounted_start: number;
        uncounted_end: number;
        authors: Array<number | string> | null;
      }>(MARK_READ, [input.threadId, input.userId, input.seq]);
      const found = rows[0];
      if (!found) return { kind: 'refused', reason: 'no_thread' };
      const cursors = { joinedSeq: found.joined_seq, leftSeq: found.left_seq };
      const upTo = Math.min(input.seq, visibleRange(cursors, found.last_seq).to);
      const readSeq = Math.max(upTo, found.read_seq);
      const unread = unreadCount({ ...cursors, readSeq }, found.last_seq, { atStart: Number(found.uncounted_start), atEnd: Number(found.uncounted_end) });
      const moved = found.moved && found.left_seq === null;
      const authors = moved ? (found.authors ?? []).map(Number) : [];
      return { kind: 'done', moved, authors, readSeq, unread, totalUnread: Number(found.elsewhere ?? 0) + unread };
    });
  }

  async receiptsOf(threadId: number, seq: number, requesterUserId: number): Promise<ReceiptsOutcome> {
    const { rows } = await this.db.read.query<{ asker: boolean; author: number | string | null; members: MemberReceiptCursors[] | null }>(RECEIPTS, [
      threadId,
      seq,
      requesterUserId,
    ]);
    const found = rows[0];
    if (!found?.asker) return { kind: 'refused', reason: 'no_thread' };
    if (found.author === null) return { kind: 'refused', reason: 'no_message' };
    const author = Number(found.author);
    const members = (found.members ?? []).map((m) => ({ userId: Number(m.userId), readSeq: Number(m.readSeq), deliveredSeq: Number(m.deliveredSeq) }));
    return receiptLists(members.filter((member) => member.userId !== author), seq);
  }

  totalUnread(userId: number): Promise<number> {
    return totalUnread(this.db.read, userId);
  }

  async membership(threadId: number, userId: number): Promise<Membership> {
    const { rows } = await this.db.read.query<{ left_seq: number | null }>('SELECT left_seq FROM thread_members WHERE thread_id = $1 AND user_id = $2', [
      threadId,
      userId,
    ]);
    const row = rows[0];
    return !row ? 'none' : row.left_seq === null ? 'member' : 'left';
  }

  hideMessage(input: { userId: number; messageId: number; now: number }): Promise<HideOutcome> {
    return this.db.writes.submit((sql) => hideMessage(sql, input));
  }

  hiddenAfter(userId: number, after: number, limit: number): Promise<{ items: StoredHidden[]; more: boolean }> {
    return hiddenAfter(this.db.read, userId, after, limit);
  }
}

/** Unread messages over all the user's threads, change rows left out, in one query (MessagingStorage.totalUnread; the admin's badge is the same read). */
export async function totalUnread(sql: Sql, userId: number): Promise<number> {
  const { rows } = await sql.query<{ total: number | string | null }>(
    `SELECT sum(${unreadSql()}) AS total FROM thread_members m JOIN threads t ON t.id = m.thread_id WHERE m.user_id = $1`,
    [userId],
  );
  return Number(rows[0]?.total ?? 0);
}

/**
 * The `receipts` request in one read: whether the asker is a current member,
 * the author of message $2 if the asker may see it (joined before it, at or
 * below the thread's last seq) and it is no change row (as hide refuses
 * them), and the cursors of the current members who joined before it, in
 * joining order (as thread_get lists them).
 */
const RECEIPTS = `
WITH asker AS (
  SELECT joined_seq FROM thread_members WHERE thread_id = $1 AND user_id = $3 AND left_seq IS NULL
)
SELECT EXISTS (SELECT 1 FROM asker) AS asker,
       (SELECT x.sender_user_id FROM messages x, asker a WHERE x.thread_id = $1 AND x.seq = $2 AND x.seq > a.joined_seq AND x.change IS NULL) AS author,
       (SELECT json_agg(json_build_object('userId', m.user_id, 'readSeq', m.read_seq, 'deliveredSeq', m.delivered_seq) ORDER BY m.joined_at, m.user_id)
          FROM thread_members m WHERE m.thread_id = $1 AND m.left_seq IS NULL AND m.joined_seq < $2) AS members`;

/**
 * The read cursor moved (clamped, forward only) in one statement, with what
 * the answer needs: the cursors as they were, whether it moved, the receipt's
 * authors (the senders of the messages it passed), the change
 * rows at the ends of this thread's unread range after the move, the unread
 * of the user's other threads (this one's is counted after the move, from them).
 */
/** The start of the unread range once the cursor moved (found's columns as `m`). */
const NEW_START = unreadStart('greatest(m.read_seq, m.up_to)');

const MARK_READ = `
WITH found AS (
  SELECT m.joined_seq, m.left_seq, m.read_seq, t.last_seq, t.uncounted, least($3::bigint, coalesce(m.left_seq, t.last_seq)) AS up_to
    FROM thread_members m JOIN threads t ON t.id = m.thread_id WHERE m.thread_id = $1 AND m.user_id = $2
),
moved AS (
  UPDATE thread_members m SET read_seq = f.up_to FROM found f
   WHERE m.thread_id = $1 AND m.user_id = $2 AND m.read_seq < f.up_to RETURNING 1
)
SELECT m.joined_seq, m.left_seq, m.read_seq, t.last_seq, EXISTS (SELECT 1 FROM moved) AS moved,
       CASE WHEN EXISTS (SELECT 1 FROM moved) AND m.left_seq IS NULL
         THEN ${receiptAuthorsSql({ threadId: '$1', mover: '$2', after: 'greatest(m.read_seq, m.joined_seq)', upTo: 'm.up_to' })} END AS authors,
       CASE WHEN ${NEW_START} >= ${UNREAD_END} THEN 0 ELSE ${uncountedAt(NEW_START)} END AS uncounted_start,
       CASE WHEN ${NEW_START} >= ${UNREAD_END} THEN 0 ELSE ${uncountedAt(UNREAD_END)} END AS uncounted_end,
       (SELECT sum(${unreadSql()}) FROM thread_members m JOIN threads t ON t.id = m.thread_id WHERE m.user_id = $2 AND m.thread_id <> $1) AS elsewhere
  FROM found m, (SELECT $1::bigint AS id, last_seq, uncounted FROM found) t`;

/**
 * Everything the batch's decisions need, per input, in the same statement that
 * locks the batch's threads in id order (their seqs and members then hold
 * still until commit). The statement reads at its start; a locked thread whose
 * row another transaction changed while this one waited for its lock comes
 * back in its newer version (READ COMMITTED), so its version differing from
 * the one the rest of the statement read says the read is stale: the caller
 * reads again, now under the locks (every change of a thread's members, roles
 * or seqs updates its row: the system message moves last_seq).
 */
const CHECK = `
WITH locked AS (
  SELECT id, xmin::text AS version FROM threads WHERE id = ANY($6::bigint[]) ORDER BY id FOR NO KEY UPDATE
),
stale AS (
  SELECT coalesce(bool_or(l.version <> t.xmin::text), false) AS stale FROM locked l JOIN threads t ON t.id = l.id
),
input AS (
  SELECT * FROM unnest($1::int[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[]) AS i(ord, thread_id, user_id, device_id, client_msg_id)
),
members AS (
  SELECT thread_id, count(*) AS n FROM thread_members WHERE thread_id = ANY($6::bigint[]) AND left_seq IS NULL GROUP BY thread_id
),
approved AS (
  SELECT m.thread_id, array_agg(d.id ORDER BY d.id) AS ids
    FROM thread_members m JOIN devices d ON d.user_id = m.user_id
   WHERE m.thread_id = ANY($7::bigint[]) AND m.left_seq IS NULL AND d.revoked_at IS NULL
     AND d.key_counter IS NOT NULL AND d.account_signature IS NOT NULL
   GROUP BY m.thread_id
)
SELECT (SELECT stale FROM stale) AS stale, i.ord, d.id IS NOT NULL AS device_found, d.revoked_at IS NOT NULL AS revoked,
       coalesce(u.disabled, false) AS disabled, u.deleted_at IS NOT NULL AS deleted,
       t.id IS NOT NULL AS in_thread, t.last_seq, t.e2e_required, t.kind AS thread_kind, m.left_seq IS NOT NULL AS left, m.joined_seq, m.role,
       coalesce(c.n, 0) AS member_count, a.ids AS approved,
       CASE WHEN e.id IS NULL THEN NULL ELSE ${messageObject('e')} END AS existing
  FROM input i
  LEFT JOIN devices d ON d.id = i.device_id
  LEFT JOIN users u ON u.id = d.user_id
  LEFT JOIN thread_members m ON m.thread_id = i.thread_id AND m.user_id = i.user_id
  LEFT JOIN threads t ON t.id = m.thread_id
  LEFT JOIN members c ON c.thread_id = i.thread_id
  LEFT JOIN approved a ON a.thread_id = i.thread_id
  LEFT JOIN messages e ON e.sender_device_id = i.device_id AND e.client_msg_id = i.client_msg_id
 ORDER BY i.ord`;

type CheckRow = {
  stale: boolean;
  ord: number;
  device_found: boolean;
  revoked: boolean;
  disabled: boolean;
  deleted: boolean;
  in_thread: boolean;
  last_seq: number | null;
  e2e_required: boolean | null;
  thread_kind: ThreadKind | null;
  left: boolean;
  joined_seq: number | null;
  role: MemberRole | null;
  member_count: number | string;
  approved: Array<number | string> | null;
  existing: StoredMessage | null;
};

/** The BatchedUnit's run: one outcome per input, in order. */
export async function appendBatch(sql: Sql, settings: AppendSettings, inputs: readonly AppendMessageInput[]): Promise<AppendOutcome[]> {
  const threadIds = [...new Set(inputs.map((input) => input.threadId))].sort((a, b) => a - b);
  // The threads whose approved devices are read: those of an e2e send or an e2e edit.
  const e2eThreads = [...new Set(inputs.filter((input) => (input.change ? input.change.type === 'edit' && input.change.content.kind === 'e2e' : input.content.kind === 'e2e')).map((input) => input.threadId))];
  const values = [
    inputs.map((_, index) => index),
    inputs.map((input) => input.threadId),
    inputs.map((input) => input.senderUserId),
    inputs.map((input) => input.senderDeviceId),
    inputs.map((input) => input.clientMsgId),
    threadIds,
    e2eThreads,
  ];
  let { rows } = await sql.query<CheckRow>(CHECK, values);
  // Another node changed a thread of the batch while this one waited for its lock: read again, under the locks.
  // (The unique (thread_id, seq) would refuse a stale seq anyway, but then the whole batch rolls back and runs
  // again unit by unit.)
  if (rows[0]?.stale) rows = (await sql.query<CheckRow>(CHECK, values)).rows;
  // After the threads' locks: the change targets locked and read in their latest state (none for plain sends).
  const related = await readRelated(sql, inputs);
  const present = await lockUploads(sql, inputs);
  const checks = rows.map((row, index): AppendCheck => {
    const input = inputs[index] as AppendMessageInput;
    const missingUpload = input.change ? undefined : input.attachments?.uploadIds.find((id) => !present.has(id));
    return { ...toCheck(row), missingUpload };
  });
  const plan = planAppends(inputs, checks, related);
  const inboxThreads = [...plan.threads].filter(([, thread]) => thread.memberCount <= settings.readDiffusionAbove).map(([id]) => id);
  const ids = await writeMessages(sql, settings, plan.messages, inboxThreads);
  // After the change rows are in: a delete erases the batch's own edits of its target too.
  await applyChanges(sql, plan.targets, plan.deleted);
  const messages = plan.messages.map((message, index) => storedMessage(message, ids[index] as number));
  return plan.outcomes.map((planned): AppendOutcome => {
    if (planned.kind === 'final') return planned.outcome;
    return { kind: planned.kind, message: messages[planned.planned] as StoredMessage };
  });
}

/**
 * The batch's attached uploads that are complete, locked FOR KEY SHARE (in id
 * order) to commit: a deletion or collection waits for this transaction, so
 * every reference the batch writes names an upload that is there. No query
 * when no send of the batch carries attachments.
 */
async function lockUploads(sql: Sql, inputs: readonly AppendMessageInput[]): Promise<ReadonlySet<string>> {
  const ids = [...new Set(inputs.flatMap((input) => (input.change ? [] : (input.attachments?.uploadIds ?? []))))].sort();
  if (ids.length === 0) return new Set();
  const { rows } = await sql.query<{ id: string }>('SELECT id FROM uploads WHERE id = ANY($1::text[]) AND completed_at IS NOT NULL ORDER BY id FOR KEY SHARE', [ids]);
  return new Set(rows.map((row) => row.id));
}

function toCheck(row: CheckRow): AppendCheck {
  return {
    token: row.device_found ? { revoked: row.revoked, disabled: row.disabled, deleted: row.deleted } : undefined,
    thread: row.in_thread
      ? {
          lastSeq: Number(row.last_seq),
          memberCount: Number(row.member_count),
          e2eRequired: row.e2e_required === true,
          left: row.left,
          joinedSeq: Number(row.joined_seq),
          role: row.role as MemberRole,
          threadKind: row.thread_kind as ThreadKind,
        }
      : undefined,
    approved: row.approved?.map(Number),
    existing: row.existing ?? undefined,
  };
}
