import type { AccountEvent } from './account-events.js';
import type { TokenState } from './token.js';

/** A user as every engine returns it (times in Unix ms). */
export interface StoredAccount {
  readonly id: number;
  readonly username: string;
  readonly displayName: string;
  /** Null once the user is deleted. */
  readonly passwordHash: string | null;
  readonly disabled: boolean;
  readonly createdAt: number;
  /** Deleted users stay (their names stay reserved), marked here. */
  readonly deletedAt: number | null;
  readonly lastActiveAt: number | null;
}

/** A device as every engine returns it (times in Unix ms). */
export interface StoredDevice {
  readonly id: number;
  readonly userId: number;
  readonly name: string;
  readonly platform: string;
  readonly createdAt: number;
  readonly lastSeenAt: number | null;
  readonly revokedAt: number | null;
}

/** A live device found by its token, with what authentication needs of its user. */
export interface DeviceWithUser {
  readonly device: StoredDevice;
  readonly user: Pick<StoredAccount, 'id' | 'username' | 'displayName' | 'disabled' | 'deletedAt'>;
}

/**
 * Looking users up by id or by name (case-insensitive). Deleted users are
 * found too: their names stay reserved, and the caller checks deletedAt.
 */
export interface UserLookup {
  userById(id: number): Promise<StoredAccount | undefined>;
  userByUsername(username: string): Promise<StoredAccount | undefined>;
}

/** What a unit that revokes tokens did: the devices that lost theirs, and the account events recorded in the same commit. */
export interface RevocationChange {
  readonly deviceIds: readonly number[];
  /** Recorded in the revoking transaction (any process reads them); ids grow in commit order. */
  readonly events: readonly AccountEvent[];
}

export type CreateUserOutcome =
  | { readonly kind: 'created'; readonly userId: number; readonly inviteId: number | undefined }
  | { readonly kind: 'refused'; readonly reason: 'invite_invalid' | 'username_taken' };

/**
 * Who a people search looks for: `prefix`, users whose username, display
 * name or a word of the display name starts with `query`; `exact`, the user
 * whose username is `query`. Case-insensitive for ASCII letters on every
 * engine (other letters as the engine's collation folds them). Disabled and
 * deleted users are never found, nor `excludeUserId` (the searcher).
 */
export interface UserQuery {
  readonly match: 'prefix' | 'exact';
  readonly query: string;
  readonly excludeUserId: number;
  readonly limit: number;
}

export type AddDeviceOutcome = { readonly kind: 'added'; readonly deviceId: number } | { readonly kind: 'refused'; readonly reason: 'account_disabled' };

/**
 * AccountService's storage. Every read resolves with a snapshot; every write
 * is one named unit of work (atomic, plain data in and out) that resolves only
 * after its commit, so whatever the caller tells anyone afterwards is stored.
 */
export interface AccountsStorage extends UserLookup {
  /** The live (not revoked) device holding this token hash, with its user. */
  deviceByTokenHash(tokenHash: Buffer): Promise<DeviceWithUser | undefined>;
  /** Whether the device's token works (revoked, user disabled, user deleted); undefined for an unknown device. */
  tokenState(deviceId: number): Promise<TokenState | undefined>;
  deviceById(deviceId: number): Promise<StoredDevice | undefined>;
  devicesOfUser(userId: number, options: { includeRevoked: boolean }): Promise<StoredDevice[]>;
  /**
   * Creates a user. With `inviteHash`, the invite is used once in the same
   * unit: a taken username leaves it unused, an unusable invite creates nobody.
   */
  createUser(input: { username: string; displayName: string; passwordHash: string; inviteHash: Buffer | null; now: number }): Promise<CreateUserOutcome>;
  /** Replaces the password hash (a rehash under new parameters); nothing else changes. */
  setPasswordHash(userId: number, passwordHash: string): Promise<void>;
  /** A new device with its token hash, refused if the user is (by now) disabled or deleted. */
  addDevice(input: { userId: number; name: string; platform: string; tokenHash: Buffer; now: number }): Promise<AddDeviceOutcome>;
  /**
   * Sets the password hash and, with `revoke`, revokes every live device of
   * the user but `revoke.keepDeviceId` (null: none), recording a
   * `password_changed` event per revoked device.
   */
  changePassword(input: { userId: number; passwordHash: string; revoke: { keepDeviceId: number | null } | null; now: number }): Promise<RevocationChange>;
  /** Revokes those of `deviceIds` still live (a `device_revoked` event each); the others are left out of the answer. */
  revokeDevices(input: { userId: number; deviceIds: readonly number[]; now: number }): Promise<RevocationChange>;
  /** Sets the display name of a user that is not deleted; resolves false when there is none. */
  setDisplayName(userId: number, displayName: string): Promise<boolean>;
  /** Users matching the query: a whole-username match first, then by username; at most `limit`. */
  findUsers(query: UserQuery): Promise<StoredAccount[]>;
  /** When the device was last seen (group-committed with whatever else commits). */
  touchDevice(deviceId: number, at: number): Promise<void>;
}
