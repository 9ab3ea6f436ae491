import type { AccountEvent, AccountEventsStorage } from '../ports/account-events.js';
import type { PgDatabase } from './database.js';

/** An account event row as the ports spell it (the aliases do the mapping). */
export const ACCOUNT_EVENT = 'id, user_id AS "userId", device_id AS "deviceId", reason, created_at AS "createdAt"';

/**
 * Where the RevocationWatcher reads revocations made by other nodes and by the
 * admin CLI. Its cursor is an id, which is only sound if ids grow in commit
 * order: an identity sequence hands ids out at insert time, so on its own a
 * transaction could commit id 6 before another commits id 5, and a reader
 * that saw 6 would never look at 5. Migration 0003 makes every insert into
 * account_events take a transaction-scoped lock before its ids are drawn (a
 * statement trigger, so it holds for every writer, whichever code it runs):
 * the next writer draws its ids only after the previous one committed.
 * Revocations are rare, so serialising their writers costs nothing that shows.
 */
export class PostgresAccountEventsStorage implements AccountEventsStorage {
  /** The newest id seen by changedElsewhere, undefined before its first call. */
  private seenLatest: number | undefined;

  constructor(private readonly db: PgDatabase) {}

  /**
   * Whether the newest event id changed since the last call: one read of the
   * primary key's last entry, cheap enough several times a second. (There is
   * no PRAGMA data_version here; this node's own events count too, which
   * costs the watcher one read it did not need.) The first call answers true.
   */
  async changedElsewhere(): Promise<boolean> {
    const latest = await this.latestAccountEventId();
    const changed = latest !== this.seenLatest;
    this.seenLatest = latest;
    return changed;
  }

  async accountEventsAfter(afterId: number, limit: number): Promise<AccountEvent[]> {
    const { rows } = await this.db.read.query<Readonly<AccountEvent>>(`SELECT ${ACCOUNT_EVENT} FROM account_events WHERE id > $1 ORDER BY id LIMIT $2`, [afterId, limit]);
    return rows;
  }

  async latestAccountEventId(): Promise<number> {
    const { rows } = await this.db.read.query<{ id: number | null }>('SELECT max(id) AS id FROM account_events');
    return rows[0]?.id ?? 0;
  }
}
