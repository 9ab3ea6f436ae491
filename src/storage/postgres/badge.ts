import type { Sql } from './sql.js';
import { unreadSql } from './unread.js';

/**
 * The badge of a notification in one statement: unreadCount summed over the
 * user's memberships (the threads list's arithmetic, change rows left out),
 * muted threads left out (they send nothing, so they add nothing to the
 * number on the icon). Nothing per member of a thread: its cost is the
 * user's memberships, whatever the size of their groups.
 */
export const BADGE_SQL = `SELECT coalesce(sum(${unreadSql()}), 0) AS badge
  FROM thread_members m JOIN threads t ON t.id = m.thread_id
 WHERE m.user_id = $1 AND NOT m.muted`;

export async function badgeCount(sql: Sql, userId: number): Promise<number> {
  const { rows } = await sql.query<{ badge: number | string }>(BADGE_SQL, [userId]);
  return Number(rows[0]?.badge ?? 0);
}
