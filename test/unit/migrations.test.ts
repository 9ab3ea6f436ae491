import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openConfiguredDatabase } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import { DatabaseError, checkDatabase, latestVersion, loadMigrations, migrate, openDatabase, readEpoch, schemaVersion } from '../../src/storage/database.js';
import { hashInviteCode } from '../../src/crypto/tokens.js';
import { InvitesRepository } from '../../src/storage/repositories/invites.js';
import { tempDir } from '../helpers/tmp.js';

const open = (file: string) => openDatabase({ file, synchronous: 'full', busyTimeoutMs: 1000 });

describe('migrations', () => {
  it('build the whole schema on an empty database, in WAL mode, with an epoch', () => {
    const db = open(join(tempDir(), 'chatd.db'));
    assert.deepEqual(migrate(db), loadMigrations().map((m) => m.version));
    assert.equal(schemaVersion(db), latestVersion(loadMigrations()));
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(db.pragma('foreign_keys', { simple: true }), 1);
    const tables = (db.prepare(`SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name`).all() as Array<{ name: string }>).map((t) => t.name);
    for (const table of ['users', 'devices', 'invites', 'threads', 'thread_members', 'device_cursors', 'messages', 'inbox', 'contacts', 'meta']) {
      assert.ok(tables.includes(table), `table ${table} exists`);
    }
    assert.match(readEpoch(db), /^[0-9a-f]{32}$/);
    assert.equal(checkDatabase(db).ok, true);
    db.close();
  });

  it('the server opens its database with the configured checkpoint interval (storage.wal_checkpoint_pages)', () => {
    const dir = tempDir();
    const defaults = openConfiguredDatabase(loadConfig({ flags: { 'storage.dir': join(dir, 'a') } }));
    assert.equal(defaults.pragma('wal_autocheckpoint', { simple: true }), 10_000);
    defaults.close();
    const configured = openConfiguredDatabase(loadConfig({ flags: { 'storage.dir': join(dir, 'b') }, env: { CHATD_STORAGE_WAL_CHECKPOINT_PAGES: '2000' } }));
    assert.equal(configured.pragma('wal_autocheckpoint', { simple: true }), 2000);
    configured.close();
  });

  it('are a no-op when run again, and keep the epoch', () => {
    const file = join(tempDir(), 'chatd.db');
    const first = open(file);
    migrate(first);
    const epoch = readEpoch(first);
    first.close();
    const second = open(file);
    assert.deepEqual(migrate(second), []);
    assert.equal(readEpoch(second), epoch);
    second.close();
  });

  it('give every new database its own epoch', () => {
    const [a, b] = [open(join(tempDir(), 'a.db')), open(join(tempDir(), 'b.db'))];
    migrate(a);
    migrate(b);
    assert.notEqual(readEpoch(a), readEpoch(b));
  });

  it('refuse a database whose schema is newer than the code', () => {
    const db = open(join(tempDir(), 'chatd.db'));
    migrate(db);
    db.pragma(`user_version = ${latestVersion(loadMigrations()) + 1}`);
    assert.throws(() => migrate(db), (error: unknown) => error instanceof DatabaseError && /newer than this chatd knows/.test(error.message));
  });

  it('0009 rebuilds messages with the idempotency key led by client_msg_id, keeping every row and every reference to them', () => {
    const db = open(join(tempDir(), 'chatd.db'));
    migrate(db, loadMigrations().slice(0, 8));
    db.exec(`
      INSERT INTO users (id, username, display_name, password_hash, created_at) VALUES (1, 'a', 'a', 'x', 0), (2, 'b', 'b', 'x', 0);
      INSERT INTO devices (id, user_id, name, platform, created_at) VALUES (1, 1, 'd', 'cli', 0), (2, 2, 'd', 'cli', 0);
      INSERT INTO threads (id, kind, title, created_at) VALUES (1, 'group', 't', 0);
      INSERT INTO messages (id, thread_id, seq, sender_user_id, sender_device_id, client_msg_id, kind, body, created_at)
        VALUES (7, 1, 1, 1, 1, 'm1', 'text', '{"text":"one"}', 10), (9, 1, 2, 1, 1, 'm2', 'e2e', '{"v":1}', 11);
      INSERT INTO inbox (device_id, message_id, thread_id, seq, created_at) VALUES (2, 7, 1, 1, 10), (2, 9, 1, 2, 11);
    `);
    const before = db.prepare('SELECT * FROM messages ORDER BY id').all();
    // Compared right after 0009: later migrations may add columns of their own (0014: attachments).
    assert.deepEqual(migrate(db, loadMigrations().slice(0, 9)), [9]);
    assert.deepEqual(db.prepare('SELECT * FROM messages ORDER BY id').all(), before, 'rows, ids and columns unchanged');
    assert.deepEqual(migrate(db), loadMigrations().slice(9).map((m) => m.version));
    assert.equal(db.pragma('foreign_keys', { simple: true }), 1, 'foreign keys are enforced again after migrating');
    assert.deepEqual(db.pragma('foreign_key_check'), [], 'the inbox still refers to the rebuilt table');
    const unique = (db.pragma('index_list(messages)') as Array<{ name: string; unique: number }>).filter((index) => index.unique === 1);
    assert.equal(unique.length, 2, 'no index left over from the old table');
    const columns = unique.map((index) => (db.pragma(`index_info(${index.name})`) as Array<{ name: string }>).map((column) => column.name).join(','));
    assert.deepEqual(columns.sort(), ['client_msg_id,sender_device_id', 'thread_id,seq']);
    assert.throws(
      () => db.prepare(`INSERT INTO inbox (device_id, message_id, thread_id, seq, created_at) VALUES (2, 999, 1, 3, 0)`).run(),
      /FOREIGN KEY constraint failed/,
      'enforced on the rebuilt table',
    );
    assert.equal(checkDatabase(db).ok, true);
    db.close();
  });

  it('refuse a migration that would leave foreign key violations, and apply nothing of it', () => {
    const db = open(join(tempDir(), 'chatd.db'));
    migrate(db);
    const version = schemaVersion(db);
    const broken = { version: version + 1, name: `${version + 1}_broken.sql`, sql: 'CREATE TABLE extra (x INTEGER); INSERT INTO inbox (device_id, message_id, thread_id, seq, created_at) VALUES (5, 5, 5, 5, 0);' };
    assert.throws(() => migrate(db, [...loadMigrations(), broken]), (error: unknown) => error instanceof DatabaseError && /would add 3 foreign key violation\(s\); nothing of it was applied/.test(error.message));
    assert.equal(schemaVersion(db), version);
    assert.equal((db.prepare(`SELECT count(*) AS n FROM sqlite_schema WHERE name = 'extra'`).get() as { n: number }).n, 0, 'its table was rolled back');
    assert.equal(db.pragma('foreign_keys', { simple: true }), 1);
    db.close();
  });

  it('apply a migration over foreign key violations that were there before it (db check reports those)', () => {
    const db = open(join(tempDir(), 'chatd.db'));
    migrate(db, loadMigrations().slice(0, 8));
    db.pragma('foreign_keys = OFF');
    db.exec('INSERT INTO inbox (device_id, message_id, thread_id, seq, created_at) VALUES (5, 5, 5, 5, 0)');
    db.pragma('foreign_keys = ON');
    assert.deepEqual(migrate(db), loadMigrations().slice(8).map((m) => m.version));
    assert.equal(checkDatabase(db).ok, false, 'the old violation is still reported');
    db.close();
  });

  it('enforce the messaging invariants in the schema: one seq per thread, one message per (client_msg_id, device)', () => {
    const db = open(join(tempDir(), 'chatd.db'));
    migrate(db);
    db.exec(`
      INSERT INTO users (id, username, display_name, password_hash, created_at) VALUES (1, 'a', 'a', 'x', 0);
      INSERT INTO devices (id, user_id, name, platform, created_at) VALUES (1, 1, 'd', 'cli', 0);
      INSERT INTO threads (id, kind, title, created_at) VALUES (1, 'group', 't', 0);
      INSERT INTO messages (thread_id, seq, sender_user_id, sender_device_id, client_msg_id, body, created_at) VALUES (1, 1, 1, 1, 'm1', 'hi', 0);
    `);
    const insert = db.prepare(
      `INSERT INTO messages (thread_id, seq, sender_user_id, sender_device_id, client_msg_id, body, created_at) VALUES (1, ?, 1, 1, ?, 'hi', 0)`,
    );
    assert.throws(() => insert.run(1, 'm2'), /UNIQUE constraint failed: messages.thread_id, messages.seq/);
    assert.throws(() => insert.run(2, 'm1'), /UNIQUE constraint failed: messages.client_msg_id, messages.sender_device_id/);
  });

  it('load migrations numbered without a gap, and refuse a gap (a lower number landing later would never be applied) or two of one number', () => {
    const ok = tempDir();
    for (const file of ['0001_a.sql', '0002_b.sql', '0003_c.sql']) writeFileSync(join(ok, file), 'SELECT 1;');
    assert.deepEqual(loadMigrations(ok).map((m) => m.version), [1, 2, 3]);
    assert.equal(latestVersion(loadMigrations(ok)), 3);
    const gap = tempDir();
    for (const file of ['0001_a.sql', '0002_b.sql', '0004_d.sql']) writeFileSync(join(gap, file), 'SELECT 1;');
    assert.throws(() => loadMigrations(gap), /0004_d\.sql does not follow version 2 \(expected 0003_…\)/);
    const twice = tempDir();
    for (const file of ['0001_a.sql', '0002_b.sql', '0002_c.sql']) writeFileSync(join(twice, file), 'SELECT 1;');
    assert.throws(() => loadMigrations(twice), /0002_c\.sql does not follow version 2/);
  });

  it('0011 keeps invite codes only as hashes, and the codes made before it keep working', () => {
    const db = open(join(tempDir(), 'chatd.db'));
    migrate(db, loadMigrations().filter((m) => m.version < 11));
    db.exec(`
      INSERT INTO invites (code, created_at, expires_at, max_uses, uses, revoked_at, note) VALUES
        ('abcd-efgh-jkmn-pqrs', 1, NULL, 2, 1, NULL, 'book club'),
        ('wxyz-2345-6789-abcd', 2, 5, 1, 0, 3, '');
    `);
    migrate(db);
    const rows = db.prepare('SELECT * FROM invites ORDER BY id').all() as Array<Record<string, unknown>>;
    assert.deepEqual(
      rows.map((row) => ({ ...row, code_hash: undefined })),
      [
        { id: 1, code_hash: undefined, code_prefix: 'abcd', created_at: 1, expires_at: null, max_uses: 2, uses: 1, revoked_at: null, note: 'book club' },
        { id: 2, code_hash: undefined, code_prefix: 'wxyz', created_at: 2, expires_at: 5, max_uses: 1, uses: 0, revoked_at: 3, note: '' },
      ],
    );
    assert.ok(!JSON.stringify(db.prepare('SELECT * FROM invites').all()).includes('efgh'), 'no code left in the table');
    const invites = new InvitesRepository(db);
    assert.equal(invites.consume(hashInviteCode(' ABCD-efgh-jkmn-pqrs '), 10), 1, 'the old code registers, typed in any case');
    assert.equal(invites.consume(hashInviteCode('abcd-efgh-jkmn-pqrs'), 10), undefined, 'and is used up after its two uses');
    assert.equal(invites.consume(hashInviteCode('wxyz-2345-6789-abcd'), 1), undefined, 'a revoked one stays revoked');
    assert.equal(checkDatabase(db).ok, true);
    db.close();
  });

  it('0011 logs out the devices of users disabled before it, whose tokens enabling them would have brought back', () => {
    const db = open(join(tempDir(), 'chatd.db'));
    migrate(db, loadMigrations().filter((m) => m.version < 11));
    db.exec(`
      INSERT INTO users (id, username, display_name, password_hash, disabled, created_at) VALUES (1, 'a', 'a', 'x', 1, 0), (2, 'b', 'b', 'x', 0, 0);
      INSERT INTO devices (id, user_id, name, platform, token_hash, created_at, push_platform, push_token) VALUES
        (1, 1, 'd', 'cli', X'01', 0, 'fcm', 't1'), (2, 2, 'd', 'cli', X'02', 0, 'fcm', 't2');
    `);
    migrate(db);
    const devices = db.prepare('SELECT id, token_hash, push_token, revoked_at FROM devices ORDER BY id').all() as Array<Record<string, unknown>>;
    assert.equal(devices[0]?.token_hash, null);
    assert.equal(devices[0]?.push_token, null);
    assert.ok(Math.abs(Number(devices[0]?.revoked_at) - Date.now()) < 60_000, 'revoked now, in milliseconds');
    assert.deepEqual(devices[1], { id: 2, token_hash: Buffer.from([2]), push_token: 't2', revoked_at: null }, 'an enabled user keeps their devices');
    db.close();
  });
});
