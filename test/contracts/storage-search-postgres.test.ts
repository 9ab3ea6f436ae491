import { PostgresSearchStorage } from '../../src/storage/postgres/search.js';
import type { PgDatabase } from '../../src/storage/postgres/database.js';
import { openPostgresMessaging } from '../helpers/postgres-messaging.js';
import { searchStorageContract } from './storage-search.contract.js';

searchStorageContract('PostgreSQL', async () => {
  const f = await openPostgresMessaging({ readDiffusionAbove: 50 });
  const { db } = f;
  return {
    search: new PostgresSearchStorage(db),
    messaging: f.messaging,
    threads: f.threads,
    user: f.user,
    device: f.device,
    deleteForEveryone: async (messageId) => {
      await db.read.query(`UPDATE messages SET body = 'null', attachments = NULL, deleted_at = 1 WHERE id = $1`, [messageId]);
    },
    hide: async (userId, messageId) => {
      await db.read.query('INSERT INTO hidden_messages (user_id, message_id, thread_id, hidden_at) SELECT $1, id, thread_id, 1 FROM messages WHERE id = $2', [userId, messageId]);
    },
    editBody: async (messageId, bodyJson) => {
      await db.read.query('UPDATE messages SET body = $1, edited_at = 1 WHERE id = $2', [bodyJson, messageId]);
    },
    changeRow: (threadId, senderUserId, senderDeviceId, targetId, bodyJson) => insertRow(db, threadId, senderUserId, senderDeviceId, 'text', bodyJson, targetId),
    dropFromIndex: async (messageId) => {
      await db.read.query('DELETE FROM message_search WHERE message_id = $1', [messageId]);
    },
    e2eRow: (threadId, senderUserId, senderDeviceId, bodyJson) => insertRow(db, threadId, senderUserId, senderDeviceId, 'e2e', bodyJson, null),
    close: f.close,
  };
});

async function insertRow(db: PgDatabase, threadId: number, userId: number, deviceId: number, kind: string, body: string, targetId: number | null): Promise<void> {
  await db.read.query(
    `WITH t AS (UPDATE threads SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq)
     INSERT INTO messages (thread_id, seq, sender_user_id, sender_device_id, client_msg_id, kind, body, created_at, target_id, change)
     SELECT $1, t.last_seq, $2, $3, 'raw-' || t.last_seq, $4, $5, 1, $6::bigint, CASE WHEN $6::bigint IS NULL THEN NULL ELSE '{"type":"edit"}' END FROM t`,
    [threadId, userId, deviceId, kind, body, targetId],
  );
}
