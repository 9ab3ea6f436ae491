import assert from 'node:assert/strict';
import { SqliteSearchStorage } from '../../src/storage/sqlite/search.js';
import { openSqliteMessaging } from '../helpers/sqlite-messaging.js';
import { searchStorageContract } from './storage-search.contract.js';

searchStorageContract('SQLite', async () => {
  const f = await openSqliteMessaging({ readDiffusionAbove: 50 });
  const { db } = f.store;
  let changes = 0;
  /** A change by the message's author, from the device that sent it. */
  const byAuthor = (messageId: number) => {
    const row = db.prepare('SELECT thread_id, sender_user_id, sender_device_id FROM messages WHERE id = ?').get(messageId) as { thread_id: number; sender_user_id: number; sender_device_id: number };
    return { threadId: row.thread_id, senderUserId: row.sender_user_id, senderDeviceId: row.sender_device_id, clientMsgId: `change-${++changes}`, now: 2, requireE2eEverywhere: false };
  };
  return {
    search: new SqliteSearchStorage(f.store),
    messaging: f.messaging,
    threads: f.threads,
    user: f.user,
    device: f.device,
    // The message-change units themselves (on SQLite they are on this branch): the index follows whatever writes messages.
    deleteForEveryone: async (messageId) => {
      const outcome = await f.messaging.appendMessage({ ...byAuthor(messageId), change: { type: 'delete', targetId: messageId } });
      assert.equal(outcome.kind, 'stored');
    },
    hide: async (userId, messageId) => {
      assert.equal((await f.messaging.hideMessage({ userId, messageId, now: 2 })).kind, 'hidden');
    },
    editBody: async (messageId, bodyJson) => {
      const outcome = await f.messaging.appendMessage({ ...byAuthor(messageId), change: { type: 'edit', targetId: messageId, content: { kind: 'text' }, bodyJson, editWindowMs: 0 } });
      assert.equal(outcome.kind, 'stored');
    },
    changeRow: async (threadId, senderUserId, senderDeviceId, targetId, bodyJson) => {
      insertRow(db, threadId, senderUserId, senderDeviceId, 'text', bodyJson, targetId);
    },
    dropFromIndex: async (messageId) => {
      db.prepare(`INSERT INTO message_words (message_words, rowid, text) SELECT 'delete', id, text FROM message_search_text WHERE id = ?`).run(messageId);
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
