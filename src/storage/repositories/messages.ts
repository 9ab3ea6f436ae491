import type { Db } from '../database.js';
import type { MessageKind } from '../ports/messaging.js';

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

/** Messages by thread and seq. A thread's visible range for a member is (from, to]: joined_seq < seq <= left_seq or last_seq. */
export class MessagesRepository {
  private readonly insertStatement;
  private readonly refStatement;
  private readonly uploadStatement;
  private readonly byClientId;
  private readonly byId;
  private readonly afterStatement;
  private readonly beforeStatement;

  constructor(db: Db) {
    this.insertStatement = db.prepare<[number, number, number, number, string, string, string, number, string | null]>(
      `INSERT INTO messages (thread_id, seq, sender_user_id, sender_device_id, client_msg_id, kind, body, created_at, attachments)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (client_msg_id, sender_device_id) DO NOTHING`,
    );
    this.refStatement = db.prepare<[string, number, number]>('INSERT INTO attachment_refs (upload_id, thread_id, seq) VALUES (?, ?, ?)');
    this.uploadStatement = db.prepare<[string], number>('SELECT 1 FROM uploads WHERE id = ? AND completed_at IS NOT NULL').pluck();
    this.byClientId = db.prepare<[number, string], MessageRow>(`SELECT ${COLUMNS} FROM messages WHERE sender_device_id = ? AND client_msg_id = ?`);
    this.byId = db.prepare<[number], MessageRow>(`SELECT ${COLUMNS} FROM messages WHERE id = ?`);
    this.afterStatement = db.prepare<[number, number, number, number], MessageRow>(
      `SELECT ${COLUMNS} FROM messages WHERE thread_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?`,
    );
    this.beforeStatement = db.prepare<[number, number, number, number], MessageRow>(
      `SELECT ${COLUMNS} FROM messages WHERE thread_id = ? AND seq < ? AND seq > ? ORDER BY seq DESC LIMIT ?`,
    );
  }

  /** Stores the message; undefined when its device already used its client id (nothing stored: the caller looks that one up). */
  insert(message: NewMessage): number | undefined {
    const m = message;
    const result = this.insertStatement.run(m.threadId, m.seq, m.senderUserId, m.senderDeviceId, m.clientMsgId, m.kind, m.body, m.now, m.attachments ?? null);
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

  /** Up to `limit` messages with afterSeq < seq <= maxSeq, ascending. */
  after(threadId: number, afterSeq: number, maxSeq: number, limit: number): MessageRow[] {
    return this.afterStatement.all(threadId, afterSeq, maxSeq, limit);
  }

  /** Up to `limit` messages with minSeq < seq < beforeSeq, ascending (the ones nearest beforeSeq). */
  before(threadId: number, beforeSeq: number, minSeq: number, limit: number): MessageRow[] {
    return this.beforeStatement.all(threadId, beforeSeq, minSeq, limit).reverse();
  }
}
