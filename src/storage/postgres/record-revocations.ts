import type { AccountEvent, RevocationReason } from '../ports/account-events.js';
import { ACCOUNT_EVENT_RETENTION_MS } from '../repositories/account-events.js';
import type { Sql } from './sql.js';

/**
 * Taken by every transaction that records account events, until it commits:
 * an identity hands out ids when rows are inserted, not when they commit, so
 * without it two nodes could commit events out of id order and a reader that
 * pages "after the last id it saw" would skip the later-committed smaller id.
 * Revocations are rare; waiting on each other costs nothing that matters.
 */
const ACCOUNT_EVENTS_LOCK = 0x63686175;

/**
 * Records revocations as account events, inside the unit that revokes: every
 * node (and the admin CLI) learns of them from the database. Prunes the
 * events past the retention as SQLite does. `deviceIds` null: every device of
 * the user. Ids grow in commit order.
 */
export async function recordRevocations(
  sql: Sql,
  change: { readonly userId: number; readonly deviceIds: readonly number[] | null; readonly reason: RevocationReason; readonly now: number },
): Promise<AccountEvent[]> {
  const targets = change.deviceIds ?? [null];
  if (targets.length === 0) return [];
  await sql.query('SELECT pg_advisory_xact_lock($1)', [ACCOUNT_EVENTS_LOCK]);
  await sql.query('DELETE FROM account_events WHERE created_at < $1', [change.now - ACCOUNT_EVENT_RETENTION_MS]);
  const { rows } = await sql.query<{ id: number; user_id: number; device_id: number | null; reason: RevocationReason; created_at: number }>(
    `INSERT INTO account_events (user_id, device_id, reason, created_at)
     SELECT $1, device_id, $3, $4 FROM unnest($2::bigint[]) WITH ORDINALITY AS t (device_id, n) ORDER BY n
     RETURNING id, user_id, device_id, reason, created_at`,
    [change.userId, targets, change.reason, change.now],
  );
  return rows
    .map((row) => ({ id: row.id, userId: row.user_id, deviceId: row.device_id, reason: row.reason, createdAt: row.created_at }))
    .sort((a, b) => a.id - b.id);
}
