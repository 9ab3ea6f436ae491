import type { InviteRow, NewInvite } from '../repositories/invites.js';
import type { PushCounts, PushRegistration } from '../repositories/push.js';
import type { TableCounts } from '../repositories/stats.js';
import type { AccountsStorage, RevocationChange, UserRow } from './accounts.js';
import type { MessagingStorage } from './messaging.js';

export type { InviteRow, NewInvite, PushCounts, PushRegistration, TableCounts };

/** AdminService's storage (the `chatd` admin commands): units resolve after commit, as in AccountsStorage. */
export interface AdminStorage
  extends Pick<AccountsStorage, 'userByUsername' | 'deviceById' | 'devicesOfUser' | 'changePassword' | 'revokeDevices'>,
    /** The badge of a test notification: the same count as a notification's. */
    Pick<MessagingStorage, 'totalUnread'> {
  /** Every user that is not deleted, by username. */
  listUsers(): Promise<UserRow[]>;
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
  listInvites(): Promise<InviteRow[]>;
  invite(ref: { id: number } | { codeHash: Buffer }): Promise<InviteRow | undefined>;
  /** False when it was revoked already. */
  revokeInvite(id: number, now: number): Promise<boolean>;
  counts(now: number): Promise<TableCounts>;
  pushCounts(): Promise<PushCounts>;
  pushRegistration(deviceId: number): Promise<PushRegistration | undefined>;
  /** The provider said the token is dead: removed unless the device registered another meanwhile. */
  dropPushToken(deviceId: number, token: string): Promise<boolean>;
}
