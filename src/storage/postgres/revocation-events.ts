import type { AccountEvent, RevocationReason } from '../ports/account-events.js';
import { ACCOUNT_EVENT_RETENTION_MS } from '../repositories/account-events.js';
import { ACCOUNT_EVENT } from './account-events.js';
import type { Sql } from './sql.js';

/**
 * Records revocations as account events, inside the unit that revokes (call
 * it with the unit's `sql`): every node and process learns of them from the
 * database. `deviceIds` null: every device of the user. Drops the events past
 * the retention, as on SQLite. Ids come out in commit order (migration 0003's
 * lock; see PostgresAccountEventsStorage).
 */
export async function recordRevocationEvents(
  sql: Sql,
  change: { readonly userId: number; readonly deviceIds: readonly number[] | null; readonly reason: RevocationReason; readonly now: number },
): Promise<AccountEvent[]> {
  const targets = change.deviceIds ?? [null];
  if (targets.length === 0) return [];
  await sql.query('DELETE FROM account_events WHERE created_at < $1', [change.now - ACCOUNT_EVENT_RETENTION_MS]);
  // One statement: its rows get consecutive ids in the order given (WITH ORDINALITY keeps it).
  const { rows } = await sql.query<Readonly<AccountEvent>>(
    `INSERT INTO account_events (user_id, device_id, reason, created_at)
     SELECT $1, t.device_id, $3, $4 FROM unnest($2::bigint[]) WITH ORDINALITY AS t(device_id, n) ORDER BY t.n
     RETURNING ${ACCOUNT_EVENT}`,
    [change.userId, targets, change.reason, change.now],
  );
  return rows.sort((a, b) => a.id - b.id);
}
