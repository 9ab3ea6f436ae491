import type { AccountEventRow } from '../repositories/account-events.js';

export type { AccountEventRow };

/** Where the revocation watcher reads account events: the database this process shares with the admin CLI. */
export interface AccountEventsStorage {
  /** Whether another process committed anything since the last call (cheap: asked several times a second). One caller per storage. */
  changedElsewhere(): Promise<boolean>;
  /** The events after `afterId`, oldest first, at most `limit`; ids grow in commit order. */
  accountEventsAfter(afterId: number, limit: number): Promise<AccountEventRow[]>;
  /** The id of the newest event, 0 when there is none. */
  latestAccountEventId(): Promise<number>;
}
