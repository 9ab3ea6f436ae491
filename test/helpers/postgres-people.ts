import pg from 'pg';
import type { PgDatabase } from '../../src/storage/postgres/database.js';
import type { Sql } from '../../src/storage/postgres/sql.js';
import { postgresServer } from '../contracts/postgres-fixture.js';

/**
 * Seeding for the PostgreSQL runners of the delivery, presence and contacts
 * contracts: rows written with SQL, as the SQLite runners write them with
 * repositories (the ports under test have no calls that create them).
 */

export async function seedUser(db: PgDatabase, name: string): Promise<number> {
  const { rows } = await db.read.query<{ id: number }>("INSERT INTO users (username, display_name, password_hash, created_at) VALUES ($1, $1, 'x', 1) RETURNING id", [name]);
  return (rows[0] as { id: number }).id;
}

let tokens = 0;
export async function seedDevice(db: PgDatabase, userId: number): Promise<number> {
  const { rows } = await db.read.query<{ id: number }>(
    "INSERT INTO devices (user_id, name, platform, token_hash, created_at, last_seen_at) VALUES ($1, 'phone', 'cli', $2, 1, 1) RETURNING id",
    [userId, Buffer.from(`token${tokens++}`)],
  );
  return (rows[0] as { id: number }).id;
}

/** A group of these users, all current members. */
export function seedThread(db: PgDatabase, userIds: readonly number[]): Promise<number> {
  return db.writes.submit(async (sql) => {
    const { rows } = await sql.query<{ id: number }>("INSERT INTO threads (kind, title, created_by, created_at) VALUES ('group', 'test', $1, 1) RETURNING id", [userIds[0]]);
    const threadId = (rows[0] as { id: number }).id;
    await sql.query("INSERT INTO thread_members (thread_id, user_id, role, joined_seq, joined_at) SELECT $1, unnest($2::bigint[]), 'member', 0, 1", [threadId, userIds]);
    return threadId;
  });
}

export async function seedContact(db: PgDatabase, userId: number, contactId: number): Promise<void> {
  await db.read.query('INSERT INTO contacts (user_id, contact_user_id, created_at) VALUES ($1, $2, 1) ON CONFLICT DO NOTHING', [userId, contactId]);
}

export async function markDeleted(db: PgDatabase, userId: number): Promise<void> {
  await db.read.query('UPDATE users SET deleted_at = 2, password_hash = NULL, disabled = true WHERE id = $1 AND deleted_at IS NULL', [userId]);
}

/** Inbox bound the message path applies in the delivery runner. */
const MAX_INBOX = 1_000;

/**
 * What the message path does for one message, inbox-wise, in its order: the
 * thread row first (its seq, locked to COMMIT), then the message (its id),
 * then the inbox rows of the members' devices not marked live, the sender's
 * excepted, with their counts. `beforeFanIn` lets a test hold the unit there.
 */
export async function storeMessage(
  sql: Sql,
  message: { threadId: number; senderUserId: number; senderDeviceId: number; now: number },
  beforeFanIn?: () => Promise<void>,
): Promise<{ id: number; seq: number }> {
  const { threadId, senderUserId, senderDeviceId, now } = message;
  const thread = await sql.query<{ last_seq: number }>('UPDATE threads SET last_seq = last_seq + 1, last_message_at = $2 WHERE id = $1 RETURNING last_seq', [threadId, now]);
  const seq = (thread.rows[0] as { last_seq: number }).last_seq;
  const inserted = await sql.query<{ id: number }>(
    `INSERT INTO messages (thread_id, seq, sender_user_id, sender_device_id, client_msg_id, kind, body, created_at)
     VALUES ($1, $2, $3, $4, $5, 'text', '{"text":"hi"}', $6) RETURNING id`,
    [threadId, seq, senderUserId, senderDeviceId, `m${threadId}-${seq}`, now],
  );
  const id = (inserted.rows[0] as { id: number }).id;
  await beforeFanIn?.();
  const counted = await sql.query<{ id: number; inbox_count: number }>(
    `WITH fanned AS (
       INSERT INTO inbox (device_id, message_id, thread_id, seq, created_at)
       SELECT d.id, $1, m.thread_id, $2, $3
         FROM thread_members m JOIN devices d ON d.user_id = m.user_id
        WHERE m.thread_id = $4 AND m.left_seq IS NULL AND d.revoked_at IS NULL AND NOT d.inbox_overflow AND d.live_after IS NULL AND d.id <> $5
       RETURNING device_id)
     UPDATE devices SET inbox_count = inbox_count + 1 WHERE id IN (SELECT device_id FROM fanned) RETURNING id, inbox_count`,
    [id, seq, now, threadId, senderDeviceId],
  );
  const over = counted.rows.filter((row) => row.inbox_count > MAX_INBOX).map((row) => row.id);
  if (over.length > 0) {
    await sql.query('DELETE FROM inbox WHERE device_id = ANY($1::bigint[])', [over]);
    await sql.query('UPDATE devices SET inbox_overflow = true, inbox_count = 0 WHERE id = ANY($1::bigint[])', [over]);
  }
  return { id, seq };
}

/** The device acknowledged the thread up to seq: its cursor moves, its inbox rows go. */
export function acknowledge(db: PgDatabase, deviceId: number, threadId: number, seq: number): Promise<void> {
  return db.writes.submit(async (sql) => {
    await sql.query(
      `INSERT INTO device_cursors (device_id, thread_id, delivered_seq) VALUES ($1, $2, $3)
       ON CONFLICT (device_id, thread_id) DO UPDATE SET delivered_seq = greatest(device_cursors.delivered_seq, excluded.delivered_seq)`,
      [deviceId, threadId, seq],
    );
    const removed = (await sql.query('DELETE FROM inbox WHERE device_id = $1 AND thread_id = $2 AND seq <= $3', [deviceId, threadId, seq])).rowCount;
    if (removed > 0) await sql.query('UPDATE devices SET inbox_count = greatest(0, inbox_count - $1) WHERE id = $2', [removed, deviceId]);
  });
}

/** A plain client on the same database (outside any pool or batcher): a test drives its transactions by hand. */
export async function rawClient(db: PgDatabase): Promise<pg.Client> {
  const url = (await postgresServer()).url(db.label.split('/').pop() as string);
  // int8 as numbers, as the pool of database.ts parses them.
  const types = { getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === 20 && format !== 'binary' ? Number : pg.types.getTypeParser(oid, format))) as typeof pg.types.getTypeParser };
  const client = new pg.Client({ connectionString: url, types });
  await client.connect();
  return client;
}

/**
 * Resolves once `work` settled or is waiting for a lock on the server (some
 * backend of this database waits on one): a test then knows the statement
 * got as far as it can. Polls pg_stat_activity: the event is on the server.
 */
export async function settledOrBlocked(db: PgDatabase, work: Promise<unknown>): Promise<'settled' | 'blocked'> {
  let settled = false;
  void work.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (;;) {
    if (settled) return 'settled';
    const { rows } = await db.read.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
    );
    if ((rows[0]?.n ?? 0) > 0) return 'blocked';
    await new Promise((resolve) => setImmediate(resolve));
  }
}
