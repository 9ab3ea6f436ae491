import type { PresenceFacts, PresenceStorage } from '../ports/presence.js';
import type { PgDatabase } from './database.js';

/** PresenceStorage on PostgreSQL: the facts in one statement, the audience in one snapshot. */
export class PostgresPresenceStorage implements PresenceStorage {
  constructor(private readonly db: PgDatabase) {}

  async facts(viewerId: number, userIds: readonly number[]): Promise<PresenceFacts[]> {
    if (userIds.length === 0) return [];
    const { rows } = await this.db.read.query<Readonly<PresenceFacts>>(
      `SELECT u.id AS "userId",
              EXISTS (SELECT 1 FROM thread_members m JOIN thread_members o ON o.thread_id = m.thread_id
                       WHERE m.user_id = $1 AND o.user_id = u.id AND u.id <> $1 AND m.left_seq IS NULL AND o.left_seq IS NULL) AS "sharesThread",
              EXISTS (SELECT 1 FROM contacts c WHERE c.user_id = u.id AND c.contact_user_id = $1) AS "addedViewer",
              u.deleted_at IS NOT NULL AS deleted, u.last_active_at AS "lastActiveAt"
         FROM users u WHERE u.id = ANY($2::bigint[])`,
      [viewerId, [...new Set(userIds)]],
    );
    const byId = new Map(rows.map((row) => [row.userId, row]));
    return userIds.flatMap((userId) => byId.get(userId) ?? []);
  }

  audience(userId: number): Promise<{ contacts: number[]; sharingThreads: number[] }> {
    return this.db.snapshot(async (sql) => {
      const contacts = await sql.query<{ id: number }>(
        `SELECT u.id FROM contacts c JOIN users u ON u.id = c.contact_user_id
          WHERE c.user_id = $1 AND u.deleted_at IS NULL ORDER BY lower(u.username)`,
        [userId],
      );
      const sharing = await sql.query<{ user_id: number }>(
        `SELECT DISTINCT o.user_id FROM thread_members m JOIN thread_members o ON o.thread_id = m.thread_id
          WHERE m.user_id = $1 AND m.left_seq IS NULL AND o.left_seq IS NULL AND o.user_id <> $1`,
        [userId],
      );
      return { contacts: contacts.rows.map((row) => row.id), sharingThreads: sharing.rows.map((row) => row.user_id) };
    });
  }

  /**
   * Never moves back: two nodes holding connections of one user report in
   * any order (SQLite's single process reports in time order).
   */
  setLastActive(userId: number, at: number): Promise<void> {
    return this.db.writes.submit(async (sql) => {
      await sql.query('UPDATE users SET last_active_at = greatest(coalesce(last_active_at, $1), $1) WHERE id = $2', [at, userId]);
    });
  }
}
