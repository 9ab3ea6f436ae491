import { PostgresDeliveryStorage } from '../../src/storage/postgres/delivery.js';
import { PostgresHistoryStorage } from '../../src/storage/postgres/history.js';
import { PostgresMessagingStorage } from '../../src/storage/postgres/messaging.js';
import { PostgresThreadStorage } from '../../src/storage/postgres/threads.js';
import type { PgDatabase } from '../../src/storage/postgres/database.js';
import { anotherNode, freshPostgres } from '../contracts/postgres-fixture.js';
import type { FixtureSettings, MessagingFixture } from '../contracts/storage-messaging.contract.js';

/** The ports over a fresh PostgreSQL database (on the test file's server), seeded with SQL. */
export async function openPostgresMessaging(settings: FixtureSettings): Promise<MessagingFixture & { db: PgDatabase }> {
  const db = await freshPostgres();
  const push = settings.push === true;
  const append = { maxMessages: 1000, readDiffusionAbove: settings.readDiffusionAbove, push: { apns: push, fcm: push } };
  let devices = 0;
  const one = async (text: string, values: unknown[]): Promise<number> => (await db.read.query<{ id: number }>(text, values)).rows[0]?.id as number;
  return {
    db,
    messaging: new PostgresMessagingStorage(db, append),
    history: new PostgresHistoryStorage(db),
    threads: new PostgresThreadStorage(db, append),
    delivery: new PostgresDeliveryStorage(db),
    otherNode: async () => {
      const other = await anotherNode(db);
      return { messaging: new PostgresMessagingStorage(other, append), threads: new PostgresThreadStorage(other, append) };
    },
    user: (name) => one(`INSERT INTO users (username, display_name, password_hash, created_at) VALUES ($1, $1, 'x', 1) RETURNING id`, [name]),
    device: async (userId, options = {}) => {
      const id = await one(`INSERT INTO devices (user_id, name, platform, token_hash, created_at, last_seen_at) VALUES ($1, 'd', 'cli', $2, 1, 1) RETURNING id`, [
        userId,
        Buffer.from(`t${++devices}`),
      ]);
      if (options.approved) {
        await db.read.query(
          `UPDATE devices SET enc_key = 'e' || id, sign_key = 's' || id, key_counter = 1, key_signature = 'sig', account_signature = 'cert', keys_at = 1 WHERE id = $1`,
          [id],
        );
      }
      return id;
    },
    revokeDevice: async (deviceId) => {
      await db.read.query('UPDATE devices SET revoked_at = 2, token_hash = NULL WHERE id = $1', [deviceId]);
    },
    goLive: async (deviceId) => {
      await db.read.query('UPDATE devices SET live_after = coalesce(live_after, (SELECT max(id) FROM messages), 0) WHERE id = $1', [deviceId]);
    },
    inbox: async (deviceId) => (await db.read.query<{ message_id: number }>('SELECT message_id FROM inbox WHERE device_id = $1 ORDER BY message_id', [deviceId])).rows.map((row) => row.message_id),
    overflow: async (deviceId) => {
      await db.read.query('WITH dropped AS (DELETE FROM inbox WHERE device_id = $1) UPDATE devices SET inbox_overflow = true, inbox_count = 0 WHERE id = $1', [deviceId]);
    },
    overflowed: async (deviceId) => (await db.read.query('SELECT 1 FROM devices WHERE id = $1 AND inbox_overflow', [deviceId])).rowCount > 0,
    // Test seeding, as the upload endpoint would leave a complete 640×480 JPEG with a thumbnail.
    seedUpload: async (userId, deviceId, id) => {
      await db.read.query(
        `INSERT INTO uploads (id, user_id, device_id, length, name, declared_type, encrypted, keep_metadata, duration_ms, created_at, expires_at,
                              completed_at, sha256, size, mime, width, height, thumb_sha256, thumb_width, thumb_height)
         VALUES ($1, $2, $3, 1000, 'photo.jpg', 'image/jpeg', false, false, NULL, 1, 86400001, 2, $4, 1000, 'image/jpeg', 640, 480, $5, 320, 240)`,
        [id, userId, deviceId, 'a'.repeat(64), 'b'.repeat(64)],
      );
      return id;
    },
    attachmentRefs: async () =>
      (await db.read.query<{ upload_id: string; thread_id: number; seq: number }>('SELECT upload_id, thread_id, seq FROM attachment_refs ORDER BY upload_id, thread_id, seq')).rows.map(
        (row): [string, number, number] => [row.upload_id, Number(row.thread_id), Number(row.seq)],
      ),
    messageRow: async (messageId) =>
      (
        await db.read.query<{ body: string; attachments: string | null; mentions: string | null; reactions: string | null }>(
          'SELECT body::text AS body, attachments::text AS attachments, mentions::text AS mentions, reactions::text AS reactions FROM messages WHERE id = $1',
          [messageId],
        )
      ).rows[0],
    pushNoted: async () =>
      (await db.read.query<{ thread_id: number; message_id: number }>('SELECT thread_id, message_id FROM push_threads ORDER BY thread_id')).rows.map(
        (row): [number, number] => [Number(row.thread_id), Number(row.message_id)],
      ),
    // The file's databases close after its tests (postgres-fixture).
    close: async () => {},
  };
}
