import type { Db } from '../database.js';
import { type MessageKind, RECEIPT_AUTHORS_SPAN } from '../ports/messaging.js';

export type { MessageKind };

export interface MessageRow {
  readonly id: number;
  readonly thread_id: number;
  readonly seq: number;
  readonly sender_user_id: number;
  readonly sender_device_id: number;
  readonly client_msg_id: string;
  readonly kind: MessageKind;
  /** JSON text, as the client sent it. */
  readonly body: string;
  readonly created_at: number;
  /** JSON text of the AttachmentJson list, or null. */
  readonly attachments: string | null;
  readonly reply_to: number | null;
  /** JSON text: the user ids mentioned, or null. */
  readonly mentions: string | null;
  readonly edited_at: number | null;
  readonly deleted_at: number | null;
  /** JSON text: [{"emoji","user_ids"}] in first-reacted order, or null. */
  readonly reactions: string | null;
  /** Change rows only. */
  readonly target_id: number | null;
  /** Change rows only: JSON text of the MessageChange. */
  readonly change: string | null;
}

export interface NewMessage {
  readonly threadId: number;
  readonly seq: number;
  readonly senderUserId: number;
  readonly senderDeviceId: number;
  readonly clientMsgId: string;
  readonly kind: MessageKind;
  readonly body: string;
  /** JSON text of the attachments; absent or null: none. */
  readonly attachments?: string | null;
  readonly replyTo?: number | null;
  /** JSON text of the user ids mentioned; absent or null: none. */
  readonly mentions?: string | null;
  /** A change row: its target and the change (JSON text). */
  readonly change?: { readonly targetId: number; readonly json: string } | null;
  /** Change rows of the thread up to and including this one (absent: 0). */
  readonly uncounted?: number;
  readonly now: number;
}

/** A MessageRow's columns, of table alias `m` when given (a join reads them as they are here). */
export function messageColumns(alias?: string): string {
  const names = [
    ...['id', 'thread_id', 'seq', 'sender_user_id', 'sender_device_id', 'client_msg_id', 'kind', 'body', 'created_at', 'attachments'],
    ...['reply_to', 'mentions', 'edited_at', 'deleted_at', 'reactions', 'target_id', 'change'],
  ];
  return alias === undefined ? names.join(', ') : names.map((name) => `${alias}.${name}`).join(', ');
}

const COLUMNS = messageColumns();
const M_COLUMNS = messageColumns('m');
/** Not hidden by user `?` ("delete for me"). */
const NOT_HIDDEN = 'NOT EXISTS (SELECT 1 FROM hidden_messages h WHERE h.user_id = ? AND h.message_id = m.id)';

/**
 * Messages by thread and seq. A thread's visible range for a member is (from, to]: joined_seq < seq <= left_seq or last_seq.
 * Change rows (target_id set) are in the thread's log but never in history: `visible*` reads leave them out, and the messages the user hid.
 */
export class MessagesRepository {
  private readonly insertStatement;
  private readonly refStatement;
  private readonly uploadStatement;
  private readonly byClientId;
  private readonly byId;
  private readonly visibleAfterStatement;
  private readonly visibleBeforeStatement;
  private readonly syncAfterStatement;
  private readonly syncBeforeStatement;
  private readonly uncountedStatement;
  private readonly notMemberStatement;
  private readonly editStatement;
  private readonly eraseStatement;
  private readonly eraseEditsStatement;
  private readonly dropRefsStatement;
  private readonly reactionsStatement;
  private readonly authorsStatement;
  private readonly senderAtStatement;

  constructor(db: Db) {
    // One statement for every message, a send or a change: its columns are all here.
    this.insertStatement = db.prepare<[number, number, number, number, string, string, string, number, string | null, number | null, string | null, number | null, string | null, number]>(
      `INSERT INTO messages (thread_id, seq, sender_user_id, sender_device_id, client_msg_id, kind, body, created_at, attachments,
                             reply_to, mentions, target_id, change, uncounted)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (client_msg_id, sender_device_id) DO NOTHING`,
    );
    this.refStatement = db.prepare<[string, number, number]>('INSERT INTO attachment_refs (upload_id, thread_id, seq) VALUES (?, ?, ?)');
    this.uploadStatement = db.prepare<[string], number>('SELECT 1 FROM uploads WHERE id = ? AND completed_at IS NOT NULL').pluck();
    this.byClientId = db.prepare<[number, string], MessageRow>(`SELECT ${COLUMNS} FROM messages WHERE sender_device_id = ? AND client_msg_id = ?`);
    this.byId = db.prepare<[number], MessageRow>(`SELECT ${COLUMNS} FROM messages WHERE id = ?`);
    this.visibleAfterStatement = db.prepare<[number, number, number, number, number], MessageRow>(
      `SELECT ${M_COLUMNS} FROM messages m
        WHERE m.thread_id = ? AND m.seq > ? AND m.seq <= ? AND m.change IS NULL AND ${NOT_HIDDEN} ORDER BY m.seq LIMIT ?`,
    );
    this.visibleBeforeStatement = db.prepare<[number, number, number, number, number], MessageRow>(
      `SELECT ${M_COLUMNS} FROM messages m
        WHERE m.thread_id = ? AND m.seq < ? AND m.seq > ? AND m.change IS NULL AND ${NOT_HIDDEN} ORDER BY m.seq DESC LIMIT ?`,
    );
    // Sync: change rows too (a device that was away learns of edits, deletes, reactions), but not what
    // the user hid, nor the changes of what they hid.
    this.syncAfterStatement = db.prepare<[number, number, number, number, number, number], MessageRow>(
      `SELECT ${M_COLUMNS} FROM messages m
        WHERE m.thread_id = ? AND m.seq > ? AND m.seq <= ? AND ${NOT_HIDDEN}
          AND (m.target_id IS NULL OR NOT EXISTS (SELECT 1 FROM hidden_messages h WHERE h.user_id = ? AND h.message_id = m.target_id))
        ORDER BY m.seq LIMIT ?`,
    );
    this.syncBeforeStatement = db.prepare<[number, number, number, number, number, number], MessageRow>(
      `SELECT ${M_COLUMNS} FROM messages m
        WHERE m.thread_id = ? AND m.seq < ? AND m.seq > ? AND ${NOT_HIDDEN}
          AND (m.target_id IS NULL OR NOT EXISTS (SELECT 1 FROM hidden_messages h WHERE h.user_id = ? AND h.message_id = m.target_id))
        ORDER BY m.seq DESC LIMIT ?`,
    );
    this.uncountedStatement = db.prepare<[number, number], number>('SELECT uncounted FROM messages WHERE thread_id = ? AND seq = ?').pluck();
    this.notMemberStatement = db
      .prepare<[string, number], number>(
        `SELECT value FROM json_each(?) WHERE value NOT IN (SELECT user_id FROM thread_members WHERE thread_id = ? AND left_seq IS NULL) LIMIT 1`,
      )
      .pluck();
    this.editStatement = db.prepare<[string, string | null, number, number]>('UPDATE messages SET body = ?, mentions = ?, edited_at = ? WHERE id = ?');
    this.eraseStatement = db.prepare<[number, number]>(
      `UPDATE messages SET body = 'null', attachments = NULL, reactions = NULL, mentions = NULL, deleted_at = ? WHERE id = ?`,
    );
    this.eraseEditsStatement = db.prepare<[number]>(
      `UPDATE messages SET body = 'null', mentions = NULL WHERE target_id = ? AND json_extract(change, '$.type') = 'edit'`,
    );
    this.dropRefsStatement = db.prepare<[number, number]>('DELETE FROM attachment_refs WHERE thread_id = ? AND seq = ?');
    this.reactionsStatement = db.prepare<[string | null, number]>('UPDATE messages SET reactions = ? WHERE id = ?');
    // A range of the (thread_id, seq) index, at most RECEIPT_AUTHORS_SPAN long (authorsBetween), its senders
    // then kept if they are current members: the thread's members by their primary key.
    this.authorsStatement = db
      .prepare<[number, number, number, number, number], number>(
        `SELECT m.user_id FROM thread_members m
          WHERE m.thread_id = ? AND m.left_seq IS NULL AND m.user_id <> ?
            AND m.user_id IN (SELECT x.sender_user_id FROM messages x
                               WHERE x.thread_id = ? AND x.seq > ? AND x.seq <= ? AND x.kind <> 'system' AND x.change IS NULL)
          ORDER BY m.user_id`,
      )
      .pluck();
    this.senderAtStatement = db
      .prepare<[number, number], number>('SELECT sender_user_id FROM messages WHERE thread_id = ? AND seq = ? AND change IS NULL')
      .pluck();
  }

  /**
   * A receipt's authors (CursorOutcome.authors): the distinct senders of the
   * messages with after < seq <= upTo, only the last RECEIPT_AUTHORS_SPAN
   * seqs of it, who are current members, `mover` left out, system messages
   * and change rows neither; ascending.
   */
  authorsBetween(threadId: number, after: number, upTo: number, mover: number): number[] {
    const from = Math.max(after, upTo - RECEIPT_AUTHORS_SPAN);
    return upTo > from ? this.authorsStatement.all(threadId, mover, threadId, from, upTo) : [];
  }

  /** The sender of the message at (thread, seq), if there is one and it is no change row. */
  senderAt(threadId: number, seq: number): number | undefined {
    return this.senderAtStatement.get(threadId, seq);
  }

  /** Stores the message; undefined when its device already used its client id (nothing stored: the caller looks that one up). */
  insert(message: NewMessage): number | undefined {
    const m = message;
    const result = this.insertStatement.run(
      m.threadId,
      m.seq,
      m.senderUserId,
      m.senderDeviceId,
      m.clientMsgId,
      m.kind,
      m.body,
      m.now,
      m.attachments ?? null,
      m.replyTo ?? null,
      m.mentions ?? null,
      m.change?.targetId ?? null,
      m.change?.json ?? null,
      m.uncounted ?? 0,
    );
    return result.changes === 1 ? Number(result.lastInsertRowid) : undefined;
  }

  /** The first of `uploadIds` that is not a complete upload (any more), or undefined. */
  missingUpload(uploadIds: readonly string[]): string | undefined {
    return uploadIds.find((id) => this.uploadStatement.get(id) === undefined);
  }

  /** Records that the message at (thread, seq) carries these uploads: call in the message's own transaction, after insert stored it. */
  addRefs(threadId: number, seq: number, uploadIds: readonly string[]): void {
    for (const uploadId of uploadIds) this.refStatement.run(uploadId, threadId, seq);
  }

  /** The message a device already sent under this client id, if any (idempotent send). */
  findByClientId(deviceId: number, clientMsgId: string): MessageRow | undefined {
    return this.byClientId.get(deviceId, clientMsgId);
  }

  findById(id: number): MessageRow | undefined {
    return this.byId.get(id);
  }

  /** History: up to `limit` messages with afterSeq < seq <= maxSeq, ascending; no change rows, none the user hid. */
  visibleAfter(userId: number, threadId: number, afterSeq: number, maxSeq: number, limit: number): MessageRow[] {
    return this.visibleAfterStatement.all(threadId, afterSeq, maxSeq, userId, limit);
  }

  /** History: up to `limit` messages with minSeq < seq < beforeSeq, ascending (the ones nearest beforeSeq); no change rows, none the user hid. */
  visibleBefore(userId: number, threadId: number, beforeSeq: number, minSeq: number, limit: number): MessageRow[] {
    return this.visibleBeforeStatement.all(threadId, beforeSeq, minSeq, userId, limit).reverse();
  }

  /** Sync: up to `limit` rows with afterSeq < seq <= maxSeq, ascending, change rows included; none the user hid, nor their changes. */
  syncAfter(userId: number, threadId: number, afterSeq: number, maxSeq: number, limit: number): MessageRow[] {
    return this.syncAfterStatement.all(threadId, afterSeq, maxSeq, userId, userId, limit);
  }

  /** Sync's rows before a seq: up to `limit` with minSeq < seq < beforeSeq, ascending (the ones nearest beforeSeq); change rows included, none the user hid, nor their changes. */
  syncBefore(userId: number, threadId: number, beforeSeq: number, minSeq: number, limit: number): MessageRow[] {
    return this.syncBeforeStatement.all(threadId, beforeSeq, minSeq, userId, userId, limit).reverse();
  }

  /** The change rows of the thread up to and including `seq` (0 for seq 0). */
  uncountedAt(threadId: number, seq: number): number {
    return seq === 0 ? 0 : (this.uncountedStatement.get(threadId, seq) ?? 0);
  }

  /** The first of `userIds` that is not a current member of the thread, or undefined. */
  firstNonMember(threadId: number, userIds: readonly number[]): number | undefined {
    return this.notMemberStatement.get(JSON.stringify(userIds), threadId);
  }

  /** An edit's new state of its target. */
  edit(id: number, body: string, mentions: string | null, now: number): void {
    this.editStatement.run(body, mentions, now, id);
  }

  /**
   * Deleted for everyone: the target's content, its edits' bodies and its
   * attachment references go (the uploads are collected after their grace);
   * with secure_delete the bytes are overwritten, not left in free space.
   */
  erase(target: Pick<MessageRow, 'id' | 'thread_id' | 'seq'>, now: number): void {
    this.eraseStatement.run(now, target.id);
    this.eraseEditsStatement.run(target.id);
    this.dropRefsStatement.run(target.thread_id, target.seq);
  }

  setReactions(id: number, json: string | null): void {
    this.reactionsStatement.run(json, id);
  }
}
