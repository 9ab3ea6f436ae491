import { SqliteDeliveryStorage } from '../../src/storage/sqlite/delivery.js';
import { SqliteHistoryStorage } from '../../src/storage/sqlite/history.js';
import { SqliteMessagingStorage } from '../../src/storage/sqlite/messaging.js';
import { SqliteThreadStorage } from '../../src/storage/sqlite/threads.js';
import { migrate, openDatabase } from '../../src/storage/database.js';
import { join } from 'node:path';
import { Store } from '../../src/storage/store.js';
import { tempDir } from './tmp.js';
import type { FixtureSettings, MessagingFixture } from '../contracts/storage-messaging.contract.js';

/** A complete 1000-byte JPEG upload of 640×480 with a thumbnail, as the upload endpoint would leave it (test seeding only). */
export const SEED_UPLOAD = `INSERT INTO uploads (id, user_id, device_id, length, name, declared_type, encrypted, keep_metadata, duration_ms, created_at, expires_at,
                      completed_at, sha256, size, mime, width, height, thumb_sha256, thumb_width, thumb_height)
  VALUES (?, ?, ?, 1000, 'photo.jpg', 'image/jpeg', 0, 0, NULL, 1, 86400001, 2, '${'a'.repeat(64)}', 1000, 'image/jpeg', 640, 480, '${'b'.repeat(64)}', 320, 240)`;

/**
 * The ports over a fresh SQLite database, seeded through the repositories: in
 * memory, or (`inFile`) in a temp file, so that a second connection — another
 * process, as `otherNode` makes — can open the same database.
 */
export async function openSqliteMessaging(settings: FixtureSettings, options: { inFile?: boolean } = {}): Promise<MessagingFixture & { store: Store; file: string }> {
  const file = options.inFile ? join(tempDir(), 'chatd.db') : ':memory:';
  const db = openDatabase({ file, synchronous: 'normal', busyTimeoutMs: 1000 });
  migrate(db);
  const store = new Store(db);
  const others: Store[] = [];
  const push = settings.push === true;
  const append = { maxMessages: 1000, readDiffusionAbove: settings.readDiffusionAbove, push: { apns: push, fcm: push } };
  let devices = 0;
  return {
    store,
    file,
    messaging: new SqliteMessagingStorage(store, append),
    history: new SqliteHistoryStorage(store),
    threads: new SqliteThreadStorage(store, append),
    delivery: new SqliteDeliveryStorage(store),
    otherNode: async () => {
      if (file === ':memory:') throw new Error('a second node needs the database in a file: openSqliteMessaging(settings, { inFile: true })');
      const other = new Store(openDatabase({ file, synchronous: 'normal', busyTimeoutMs: 1000 }));
      others.push(other);
      return { messaging: new SqliteMessagingStorage(other, append), threads: new SqliteThreadStorage(other, append) };
    },
    user: async (name) => store.users.insert({ username: name, displayName: name, passwordHash: 'x', now: 1 }) as number,
    device: async (userId, options = {}) => {
      const id = store.devices.insert({ userId, name: 'd', platform: 'cli', tokenHash: Buffer.from(`t${++devices}`), now: 1 });
      if (options.approved) store.keys.publish(id, { encKey: `e${id}`, signKey: `s${id}`, counter: 1, signature: 'sig', accountSignature: 'cert' }, 1);
      return id;
    },
    revokeDevice: async (deviceId) => {
      store.devices.revoke(deviceId, 2);
    },
    goLive: async (deviceId) => {
      store.inbox.goLive(deviceId);
    },
    inbox: async (deviceId) => store.inbox.pending(deviceId, 0, 10_000).map((row) => row.id),
    overflow: async (deviceId) => {
      store.inbox.overflow(deviceId);
    },
    overflowed: async (deviceId) => store.inbox.overflowed(deviceId),
    seedUpload: async (userId, deviceId, id) => {
      db.prepare(SEED_UPLOAD).run(id, userId, deviceId);
      return id;
    },
    attachmentRefs: async () =>
      db
        .prepare<[], { upload_id: string; thread_id: number; seq: number }>('SELECT upload_id, thread_id, seq FROM attachment_refs ORDER BY upload_id, thread_id, seq')
        .all()
        .map((row): [string, number, number] => [row.upload_id, row.thread_id, row.seq]),
    messageRow: async (messageId) =>
      db
        .prepare<[number], { body: string; attachments: string | null; mentions: string | null; reactions: string | null }>(
          'SELECT body, attachments, mentions, reactions FROM messages WHERE id = ?',
        )
        .get(messageId),
    pushNoted: async () =>
      db
        .prepare<[], { thread_id: number; message_id: number }>('SELECT thread_id, message_id FROM push_threads ORDER BY thread_id')
        .all()
        .map((row): [number, number] => [row.thread_id, row.message_id]),
    close: async () => {
      for (const other of others) other.db.close();
      db.close();
    },
  };
}
