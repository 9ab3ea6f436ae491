import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { loadPostgresMigrations, migratePostgres } from '../../src/storage/postgres/migrate.js';
import { openPostgres } from '../../src/storage/postgres/database.js';
import { postgresServer } from './postgres-fixture.js';

describe('PostgreSQL migration 0008 (Web Push)', () => {
  it('allows webpush tokens and keeps the registrations made before it', async () => {
    const url = await (await postgresServer()).freshDatabase();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const sql = { query: (text: string, values?: readonly unknown[]) => client.query(text, values as unknown[]) as never };
      await migratePostgres(sql, loadPostgresMigrations().filter((m) => m.version < 8), url);
      await client.query(`
        INSERT INTO users (id, username, display_name, password_hash, created_at) VALUES (1, 'a', 'a', 'x', 0);
        INSERT INTO devices (id, user_id, name, platform, created_at, push_platform, push_token, push_topic)
          VALUES (1, 1, 'phone', 'ios', 0, 'apns', 'abc', 'org.example.chat'), (2, 1, 'android', 'android', 0, 'fcm', 'tok', NULL), (3, 1, 'web', 'web', 0, NULL, NULL, NULL)`);
      await assert.rejects(client.query(`UPDATE devices SET push_platform = 'webpush' WHERE id = 3`), /devices_push_platform_check/);
      const before = (await client.query('SELECT * FROM devices ORDER BY id')).rows;
      const { applied } = await migratePostgres(sql, loadPostgresMigrations(), url);
      assert.ok(applied.includes('0008_webpush.sql'), applied.join(', '));
      assert.deepEqual((await client.query('SELECT * FROM devices ORDER BY id')).rows, before);
      await client.query(`UPDATE devices SET push_platform = 'webpush', push_token = '{"endpoint":"https://x"}' WHERE id = 3`);
      await assert.rejects(client.query(`UPDATE devices SET push_platform = 'other' WHERE id = 3`), /devices_push_platform_check/);
    } finally {
      await client.end();
    }
    // And the server's own start on it finds nothing left to do.
    const db = await openPostgres(url, { poolSize: 1 });
    await db.close();
  });
});
