import { SqliteSearchStorage } from '../../src/storage/sqlite/search.js';
import { openSqliteMessaging } from '../helpers/sqlite-messaging.js';
import { searchStorageContract } from './storage-search.contract.js';

searchStorageContract('SQLite', async () => {
  const f = await openSqliteMessaging({ readDiffusionAbove: 50 });
  const { db } = f.store;
  return {
    search: new SqliteSearchStorage(f.store),
    messaging: f.messaging,
    threads: f.threads,
    user: f.user,
    device: f.device,
    deleteForEveryone: async (messageId) => {
      db.prepare(`UPDATE messages SET body = 'null', attachments = NULL, deleted_at = 1 WHERE id = ?`).run(messageId);
    },
    hide: async (userId, messageId) => {
      db.prepare('INSERT INTO hidden_messages (user_id, message_id, thread_id, hidden_at) SELECT ?, id, thread_id, 1 FROM messages WHERE id = ?').run(userId, messageId);
    },
    editBody: async (messageId, bodyJson) => {
      db.prepare('UPDATE messages SET body = ?, edited_at = 1 WHERE id = ?').run(bodyJson, messageId);
    },
    changeRow: async (threadId, senderUserId, senderDeviceId, targetId, bodyJson) => {
      insertRow(db, threadId, senderUserId, senderDeviceId, 'text', bodyJson, targetId);
    },
    dropFromIndex: async (messageId) => {
      for (const index of ['message_words', 'message_trigrams']) {
        db.prepare(`INSERT INTO ${index} (${index}, rowid, text) SELECT 'delete', id, text FROM message_search_text WHERE id = ?`).run(messageId);
      }
    },
    e2eRow: async (threadId, senderUserId, senderDeviceId, bodyJson) => {
      insertRow(db, threadId, senderUserId, senderDeviceId, 'e2e', bodyJson, null);
    },
    close: f.close,
  };
});

function insertRow(db: import('../../src/storage/database.js').Db, threadId: number, userId: number, deviceId: number, kind: string, body: string, targetId: number | null): void {
  db.transaction(() => {
    const seq = (db.prepare('UPDATE threads SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq').get(threadId) as { last_seq: number }).last_seq;
    db.prepare(
      `INSERT INTO messages (thread_id, seq, sender_user_id, sender_device_id, client_msg_id, kind, body, created_at, target_id, change)
       VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`,
    ).run(threadId, seq, userId, deviceId, `raw-${seq}`, kind, body, targetId, targetId === null ? null : '{"type":"edit"}');
  })();
}
