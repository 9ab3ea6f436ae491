import type { PgDatabase } from '../../src/storage/postgres/database.js';

/**
 * Rows the PostgreSQL runners of the accounts, keys and push contracts need
 * but whose ports belong elsewhere (threads, messages), written with SQL as
 * the SQLite runners write them with repositories (sqlite-fixture.ts's seedThread).
 */

/** A group of `members` with `messages` messages from `sender`, each noted for push as the message path does. */
export async function seedThreadRows(
  db: PgDatabase,
  members: readonly number[],
  sender: { userId: number; deviceId: number },
  messages: number,
  now: number,
): Promise<{ threadId: number; messageIds: number[] }> {
  return db.writes.submit(async (sql) => {
    const thread = await sql.query<{ id: number }>(`INSERT INTO threads (kind, title, created_by, created_at) VALUES ('group', 'test', $1, $2) RETURNING id`, [members[0], now]);
    const threadId = (thread.rows[0] as { id: number }).id;
    await sql.query(`INSERT INTO thread_members (thread_id, user_id, role, joined_seq, joined_at) SELECT $1, unnest($2::bigint[]), 'member', 0, $3`, [threadId, [...members], now]);
    const messageIds: number[] = [];
    for (let seq = 1; seq <= messages; seq++) {
      const message = await sql.query<{ id: number }>(
        `INSERT INTO messages (thread_id, seq, sender_user_id, sender_device_id, client_msg_id, kind, body, created_at)
         VALUES ($1, $2, $3, $4, $5, 'text', '{"text":"hi"}', $6) RETURNING id`,
        [threadId, seq, sender.userId, sender.deviceId, `t${threadId}-m${seq}`, now],
      );
      const id = (message.rows[0] as { id: number }).id;
      await sql.query('UPDATE threads SET last_seq = $1, last_message_at = $2 WHERE id = $3', [seq, now, threadId]);
      await sql.query(
        `INSERT INTO push_threads (thread_id, message_id, sender_user_id, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (thread_id) DO UPDATE SET message_id = excluded.message_id, sender_user_id = excluded.sender_user_id, created_at = excluded.created_at`,
        [threadId, id, sender.userId, now],
      );
      messageIds.push(id);
    }
    return { threadId, messageIds };
  });
}

export async function muteThread(db: PgDatabase, threadId: number, userId: number): Promise<void> {
  await db.writes.submit((sql) => sql.query('UPDATE thread_members SET muted = true WHERE thread_id = $1 AND user_id = $2', [threadId, userId]));
}
