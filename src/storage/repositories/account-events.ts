import type { Db } from '../database.js';
import type { RevocationReason } from '../ports/account-events.js';

/** The schema's CHECK lists the same values as RevocationReason. */
export type { RevocationReason };

export interface AccountEventRow {
  readonly id: number;
  readonly user_id: number;
  /** Null: every device of the user. */
  readonly device_id: number | null;
  readonly reason: RevocationReason;
  readonly created_at: number;
}

export type NewAccountEvent = Omit<AccountEventRow, 'id'>;

/** How long events are kept: far longer than any server takes to read them (it polls several times a second). */
export const ACCOUNT_EVENT_RETENTION_MS = 86_400_000;

/**
 * The durable record of revocations, written in the transaction that makes
 * them by whichever process does, and read by id by the running server.
 * Ids grow in commit order: SQLite has one writer at a time.
 */
export class AccountEventsRepository {
  private readonly insertStatement;
  private readonly pruneStatement;
  private readonly afterStatement;
  private readonly latestStatement;
  private readonly dataVersionStatement;
  private seenVersion: number;

  constructor(db: Db) {
    this.insertStatement = db.prepare<[number, number | null, string, number], AccountEventRow>(
      'INSERT INTO account_events (user_id, device_id, reason, created_at) VALUES (?, ?, ?, ?) RETURNING id, user_id, device_id, reason, created_at',
    );
    this.pruneStatement = db.prepare<[number]>('DELETE FROM account_events WHERE created_at < ?');
    this.afterStatement = db.prepare<[number, number], AccountEventRow>(
      'SELECT id, user_id, device_id, reason, created_at FROM account_events WHERE id > ? ORDER BY id LIMIT ?',
    );
    this.latestStatement = db.prepare<[], number>('SELECT coalesce(max(id), 0) FROM account_events').pluck();
    this.dataVersionStatement = db.prepare<[], number>('PRAGMA data_version').pluck();
    this.seenVersion = this.dataVersionStatement.get() as number;
  }

  /**
   * Records revocations (call inside the transaction that makes them) and
   * drops the events past the retention, so the table stays small whichever
   * process writes and whether or not a server runs.
   */
  record(events: readonly NewAccountEvent[]): AccountEventRow[] {
    const now = events[0]?.created_at;
    if (now === undefined) return [];
    this.pruneStatement.run(now - ACCOUNT_EVENT_RETENTION_MS);
    return events.map((event) => this.insertStatement.get(event.user_id, event.device_id, event.reason, event.created_at) as AccountEventRow);
  }

  /** The events after `afterId`, oldest first, at most `limit`. */
  after(afterId: number, limit: number): AccountEventRow[] {
    return this.afterStatement.all(afterId, limit);
  }

  /** The id of the newest event, 0 when there is none. */
  latestId(): number {
    return this.latestStatement.get() as number;
  }

  /**
   * Whether another connection (another process) committed anything since
   * the last call: SQLite's data_version, a read of shared memory that costs a
   * few microseconds, so it can be asked several times a second. This
   * connection's own commits do not count. One caller per database
   * connection: each call resets it.
   */
  changedElsewhere(): boolean {
    const version = this.dataVersionStatement.get() as number;
    if (version === this.seenVersion) return false;
    this.seenVersion = version;
    return true;
  }
}
