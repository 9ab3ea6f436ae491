import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { checkDatabase, loadMigrations, migrate, openDatabase } from '../../src/storage/database.js';
import { tempDir } from '../helpers/tmp.js';

const open = (file: string) => openDatabase({ file, synchronous: 'full', busyTimeoutMs: 1000 });
/** Every schema object on devices (indexes, the trigger), by name, with its SQL. */
const devicesSchema = (db: ReturnType<typeof open>) =>
  db.prepare(`SELECT type, name, sql FROM sqlite_schema WHERE tbl_name = 'devices' AND type <> 'table' ORDER BY name`).all();

describe('migration 0017 (Web Push)', () => {
  it('rebuilds devices to allow webpush, keeping every row, reference, index and the revoke trigger', () => {
    const db = open(join(tempDir(), 'chatd.db'));
    const before17 = loadMigrations().filter((m) => m.version < 17);
    migrate(db, before17);
    db.exec(`
      INSERT INTO users (id, username, display_name, password_hash, created_at) VALUES (1, 'a', 'a', 'x', 0), (2, 'b', 'b', 'x', 0);
      INSERT INTO devices (id, user_id, name, platform, token_hash, created_at, push_platform, push_token, push_topic, inbox_count, live_after, enc_key, sign_key)
        VALUES (1, 1, 'phone', 'ios', x'01', 5, 'apns', '${'ab'.repeat(32)}', 'org.example.chat', 3, 42, 'ek', 'sk'),
               (2, 2, 'android', 'android', x'02', 6, 'fcm', 'fcm-token', NULL, 0, NULL, NULL, NULL),
               (3, 2, 'old', 'cli', NULL, 7, NULL, NULL, NULL, 0, NULL, NULL, NULL);
      INSERT INTO threads (id, kind, title, created_at) VALUES (1, 'group', 't', 0);
      INSERT INTO messages (id, thread_id, seq, sender_user_id, sender_device_id, client_msg_id, kind, body, created_at) VALUES (7, 1, 1, 1, 1, 'm1', 'text', '{"text":"one"}', 10);
      INSERT INTO inbox (device_id, message_id, thread_id, seq, created_at) VALUES (2, 7, 1, 1, 10);
      INSERT INTO push_queue (device_id, thread_id, message_id, created_at, not_before) VALUES (2, 1, 7, 10, 10);
      INSERT INTO device_messages (to_device, from_device, payload, created_at) VALUES (2, 1, x'00', 1), (1, 2, x'00', 1);
    `);
    const rows = db.prepare('SELECT * FROM devices ORDER BY id').all();
    assert.throws(() => db.prepare(`UPDATE devices SET push_platform = 'webpush' WHERE id = 3`).run(), /CHECK constraint failed/, 'not allowed before 0017');
    assert.deepEqual(migrate(db), loadMigrations().filter((m) => m.version >= 17).map((m) => m.version));
    assert.deepEqual(db.prepare('SELECT * FROM devices ORDER BY id').all(), rows, 'rows, ids, columns and their order unchanged');
    assert.deepEqual(db.pragma('foreign_key_check'), [], 'inbox, push_queue, messages and device_messages still refer to devices');
    assert.equal(db.pragma('foreign_keys', { simple: true }), 1);
    // The same indexes and trigger as a database made new (whose 0001 already had them).
    const fresh = open(join(tempDir(), 'chatd.db'));
    migrate(fresh);
    assert.deepEqual(devicesSchema(db), devicesSchema(fresh));
    assert.deepEqual(
      devicesSchema(db).map((object: any) => object.name),
      ['device_messages_dropped_at_revoke', 'devices_by_push_token', 'devices_by_sign_key', 'devices_by_user', 'sqlite_autoindex_devices_1'],
    );
    fresh.close();
    db.prepare(`UPDATE devices SET push_platform = 'webpush', push_token = '{"endpoint":"https://x"}' WHERE id = 3`).run();
    assert.throws(() => db.prepare(`UPDATE devices SET push_platform = 'other' WHERE id = 3`).run(), /CHECK constraint failed/);
    assert.throws(() => db.prepare(`INSERT INTO devices (user_id, name, platform, token_hash, created_at) VALUES (1, 'dup', 'cli', x'01', 0)`).run(), /UNIQUE constraint failed/, 'token_hash is still unique');
    assert.throws(() => db.prepare(`INSERT INTO devices (user_id, name, platform, created_at) VALUES (99, 'x', 'cli', 0)`).run(), /FOREIGN KEY constraint failed/);
    // Revoking still drops what waits for the device (the trigger of 0012, made again).
    db.prepare('UPDATE devices SET revoked_at = 1 WHERE id = 2').run();
    assert.deepEqual(db.prepare('SELECT to_device FROM device_messages ORDER BY to_device').all(), [{ to_device: 1 }]);
    assert.equal(checkDatabase(db).ok, true);
    db.close();
  });
});
