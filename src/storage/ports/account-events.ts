/** Why a device's token stopped working, as an account event records it. */
export type RevocationReason = 'device_revoked' | 'password_changed' | 'user_disabled' | 'user_deleted';

/** A revocation, recorded in the revoking unit's commit so that every process can read it. */
export interface AccountEvent {
  /** Grows in commit order. */
  readonly id: number;
  readonly userId: number;
  /** Null: every device of the user. */
  readonly deviceId: number | null;
  readonly reason: RevocationReason;
  readonly createdAt: number;
}

/** Where the revocation watcher reads account events: the database this process shares with the admin CLI. */
export interface AccountEventsStorage {
  /** Whether another process committed anything since the last call (cheap: asked several times a second). One caller per storage. */
  changedElsewhere(): Promise<boolean>;
  /** The events after `afterId`, oldest first, at most `limit`; ids grow in commit order. */
  accountEventsAfter(afterId: number, limit: number): Promise<AccountEvent[]>;
  /** The id of the newest event, 0 when there is none. */
  latestAccountEventId(): Promise<number>;
}
