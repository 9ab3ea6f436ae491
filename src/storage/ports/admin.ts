import type { AccountsStorage, RevocationChange, StoredAccount } from './accounts.js';
import type { PushQueueStorage, PushRegistration } from './push.js';

/** An invite as every engine returns it (its code is never stored, only its hash and a prefix to recognise it by). */
export interface StoredInvite {
  readonly id: number;
  readonly codePrefix: string;
  readonly createdAt: number;
  readonly expiresAt: number | null;
  readonly maxUses: number;
  readonly uses: number;
  readonly revokedAt: number | null;
  readonly note: string;
}

export interface NewInvite {
  readonly codeHash: Buffer;
  readonly codePrefix: string;
  readonly now: number;
  readonly expiresAt: number | null;
  readonly maxUses: number;
  readonly note: string;
}

/** How many of each thing is stored (`chatd stats`). */
export interface TableCounts {
  readonly users: number;
  readonly disabledUsers: number;
  /** Logged in (not revoked). */
  readonly devices: number;
  readonly threads: number;
  readonly messages: number;
  readonly inboxEntries: number;
  /** Usable now: not revoked, not used up, not expired. */
  readonly invitesOpen: number;
}

/** What the push worker did since the database was created, and what waits. */
export interface PushCounts {
  readonly sent: number;
  readonly failed: number;
  readonly droppedTokens: number;
  readonly skipped: number;
  readonly queued: number;
}

/** AdminService's storage (the `chatd` admin commands): units resolve after commit, as in AccountsStorage. */
export interface AdminStorage
  extends Pick<AccountsStorage, 'userByUsername' | 'deviceById' | 'devicesOfUser' | 'changePassword' | 'revokeDevices'>,
    /** The badge of a test notification: the same count as a notification's. */
    Pick<PushQueueStorage, 'badgeCount'> {
  /** Every user that is not deleted, by username. */
  listUsers(): Promise<StoredAccount[]>;
  /**
   * Disables the user and revokes every device; records a `user_disabled`
   * event only when the user was enabled (an already disabled user has no
   * connection to close).
   */
  disableUser(input: { userId: number; now: number }): Promise<RevocationChange>;
  enableUser(userId: number): Promise<void>;
  /** Marks the user deleted (password erased, name kept reserved), revokes every device, records `user_deleted`. */
  deleteUser(input: { userId: number; now: number }): Promise<RevocationChange>;
  createInvite(invite: NewInvite): Promise<number>;
  listInvites(): Promise<StoredInvite[]>;
  invite(ref: { id: number } | { codeHash: Buffer }): Promise<StoredInvite | undefined>;
  /** False when it was revoked already. */
  revokeInvite(id: number, now: number): Promise<boolean>;
  counts(now: number): Promise<TableCounts>;
  pushCounts(): Promise<PushCounts>;
  pushRegistration(deviceId: number): Promise<PushRegistration | undefined>;
  /** The provider said the token is dead: removed unless the device registered another meanwhile. */
  dropPushToken(deviceId: number, token: string): Promise<boolean>;
}
