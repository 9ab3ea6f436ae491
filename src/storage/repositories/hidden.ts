import type { Db } from '../database.js';

export interface HiddenRow {
  readonly id: number;
  readonly thread_id: number;
  readonly message_id: number;
}

/** "Delete for me": the messages each user hid, in the order they hid them (id). */
export class HiddenMessagesRepository {
  private readonly insertStatement;
  private readonly findStatement;
  private readonly afterStatement;

  constructor(db: Db) {
    this.insertStatement = db.prepare<[number, number, number, number]>(
      'INSERT INTO hidden_messages (user_id, message_id, thread_id, hidden_at) VALUES (?, ?, ?, ?) ON CONFLICT (user_id, message_id) DO NOTHING',
    );
    this.findStatement = db.prepare<[number, number], HiddenRow>('SELECT id, thread_id, message_id FROM hidden_messages WHERE user_id = ? AND message_id = ?');
    this.afterStatement = db.prepare<[number, number, number], HiddenRow>(
      'SELECT id, thread_id, message_id FROM hidden_messages WHERE user_id = ? AND id > ? ORDER BY id LIMIT ?',
    );
  }

  /** Hides the message for the user; undefined when it was hidden already (nothing stored). */
  insert(userId: number, messageId: number, threadId: number, now: number): number | undefined {
    const result = this.insertStatement.run(userId, messageId, threadId, now);
    return result.changes === 1 ? Number(result.lastInsertRowid) : undefined;
  }

  find(userId: number, messageId: number): HiddenRow | undefined {
    return this.findStatement.get(userId, messageId);
  }

  /** Up to `limit` of the user's hidden messages with id > afterId, by id. */
  after(userId: number, afterId: number, limit: number): HiddenRow[] {
    return this.afterStatement.all(userId, afterId, limit);
  }
}
