import assert from 'node:assert/strict';
import pg from 'pg';
import { PostgresMessagingStorage } from '../../src/storage/postgres/messaging.js';
import { PostgresSearchStorage, searchFeatures } from '../../src/storage/postgres/search.js';
import { type PgDatabase, openPostgres } from '../../src/storage/postgres/database.js';
import { PostgresThreadStorage } from '../../src/storage/postgres/threads.js';
import { openPostgresMessaging } from '../helpers/postgres-messaging.js';
import { postgresServer } from './postgres-fixture.js';
import { type SearchFixture, searchStorageContract } from './storage-search.contract.js';

searchStorageContract('PostgreSQL', async () => {
  const f = await openPostgresMessaging({ readDiffusionAbove: 50 });
  assert.deepEqual(await searchFeatures(f.db), { unaccent: true, trigrams: true }, 'the test server lets the migration create both extensions');
  return fixture(f.db, f);
});

/**
 * A role that may not create extensions (no CREATE on the database), as in a
 * managed PostgreSQL: the migration falls back to translate() for diacritics
 * and to LIKE scans for substrings, and the same contract holds.
 */
const opened: PgDatabase[] = [];
searchStorageContract('PostgreSQL without unaccent and pg_trgm', async () => {
  const server = await postgresServer();
  const url = await server.freshDatabase();
  const name = url.split('/').pop() as string;
  const admin = new pg.Client(url);
  await admin.connect();
  await admin.query(`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'plain') THEN CREATE ROLE plain LOGIN; END IF; END $$`);
  await admin.query(`REVOKE CREATE ON DATABASE ${name} FROM PUBLIC`);
  await admin.query('GRANT USAGE, CREATE ON SCHEMA public TO plain');
  await admin.end();
  const db = await openPostgres(url.replace('postgres://postgres@', 'postgres://plain@'), { poolSize: 4 });
  opened.push(db);
  assert.deepEqual(await searchFeatures(db), { unaccent: false, trigrams: false });
  const append = { maxMessages: 1000, readDiffusionAbove: 50, push: { apns: false, fcm: false } };
  let devices = 0;
  const one = async (text: string, values: unknown[]): Promise<number> => (await db.read.query<{ id: number }>(text, values)).rows[0]?.id as number;
  return fixture(db, {
    messaging: new PostgresMessagingStorage(db, append),
    threads: new PostgresThreadStorage(db, append),
    user: (username) => one(`INSERT INTO users (username, display_name, password_hash, created_at) VALUES ($1, $1, 'x', 1) RETURNING id`, [username]),
    device: (userId) => one(`INSERT INTO devices (user_id, name, platform, token_hash, created_at, last_seen_at) VALUES ($1, 'd', 'cli', $2, 1, 1) RETURNING id`, [userId, Buffer.from(`p${++devices}`)]),
    close: async () => {
      for (const each of opened.splice(0)) await each.close();
    },
  });
});

function fixture(db: PgDatabase, f: Pick<SearchFixture, 'messaging' | 'threads' | 'user' | 'device' | 'close'>): SearchFixture {
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
}

async function insertRow(db: PgDatabase, threadId: number, userId: number, deviceId: number, kind: string, body: string, targetId: number | null): Promise<void> {
  await db.read.query(
    `WITH t AS (UPDATE threads SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq)
     INSERT INTO messages (thread_id, seq, sender_user_id, sender_device_id, client_msg_id, kind, body, created_at, target_id, change)
     SELECT $1, t.last_seq, $2, $3, 'raw-' || t.last_seq, $4, $5, 1, $6::bigint, CASE WHEN $6::bigint IS NULL THEN NULL ELSE '{"type":"edit"}' END FROM t`,
    [threadId, userId, deviceId, kind, body, targetId],
  );
}
