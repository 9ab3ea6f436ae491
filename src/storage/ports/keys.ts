import type { SignedOut } from './token.js';

/** A device's published keys, as every engine returns them. */
export interface StoredDeviceKeys {
  readonly userId: number;
  readonly deviceId: number;
  readonly encKey: string;
  readonly signKey: string;
  /** Grows with every rotation; never goes back. */
  readonly counter: number;
  /** The device's signature over its keys. */
  readonly signature: string;
  /** The account key's certificate of these keys; null while pending approval. */
  readonly accountSignature: string | null;
  /** The device was logged out (its keys stay, announced as revoked). */
  readonly revoked: boolean;
}

/** What keys_publish stores. */
export interface NewDeviceKeys {
  readonly encKey: string;
  readonly signKey: string;
  readonly counter: number;
  readonly signature: string;
  readonly accountSignature: string | null;
}

/** A user's account key, as every engine returns it. */
export interface StoredAccountKey {
  readonly userId: number;
  readonly accountKey: string;
  readonly signature: string;
}

/** The account-key check a device publication carries, decided before the unit (libsodium is awaited outside). */
export interface Certification {
  readonly accountSignature: string;
  /** The signature verified against `accountKey`. */
  readonly verified: boolean;
  /** The account key read before the check; the unit refuses if it is no longer the user's. */
  readonly accountKey: string | undefined;
}

export type PublishKeysOutcome =
  | SignedOut
  | { readonly kind: 'refused'; readonly reason: 'sign_key_changed' | 'sign_key_taken' | 'no_account_key' | 'not_certified' }
  | { readonly kind: 'refused'; readonly reason: 'counter_lower' | 'enc_key_needs_higher_counter'; readonly storedCounter: number }
  | { readonly kind: 'unchanged' }
  | { readonly kind: 'stored'; readonly keys: StoredDeviceKeys };

export type PublishAccountOutcome =
  | SignedOut
  | { readonly kind: 'refused'; readonly reason: 'other_account_key' | 'not_approved' }
  | { readonly kind: 'unchanged' }
  /** `reset`: a different key replaced the user's; `uncertified` lost their approval by it. */
  | { readonly kind: 'stored'; readonly reset: boolean; readonly uncertified: readonly StoredDeviceKeys[] };

export type ApproveOutcome =
  | SignedOut
  | { readonly kind: 'refused'; readonly reason: 'no_device' }
  | { readonly kind: 'refused'; readonly reason: 'not_certified'; readonly storedCounter: number }
  | { readonly kind: 'unchanged' }
  | { readonly kind: 'stored'; readonly keys: StoredDeviceKeys };

/**
 * KeyService's storage. The identity rules a concurrent publication could
 * break between a read and a write (a device's sign_key never changes, no two
 * devices share one, counters never go back, an account key changes only by
 * a reset) are checked inside the units that write; signatures are checked
 * by the service before.
 */
export interface KeysStorage {
  deviceKeys(deviceId: number): Promise<StoredDeviceKeys | undefined>;
  accountKey(userId: number): Promise<StoredAccountKey | undefined>;
  /** One consistent snapshot: the account keys and device keys (revoked and pending too) of these users. */
  keysOfUsers(userIds: readonly number[]): Promise<{ accounts: StoredAccountKey[]; devices: StoredDeviceKeys[] }>;
  /** The user's revoked devices that had published keys. */
  revokedDeviceKeys(userId: number): Promise<StoredDeviceKeys[]>;
  /** Users who share or shared a thread with the user (either side left since): who may hold their keys. */
  usersEverSharingThreads(userId: number): Promise<number[]>;
  /** keys_publish. Keys equal to the stored ones (approval included) are `unchanged`; new keys without `certification` are stored pending. */
  publishDeviceKeys(input: { userId: number; deviceId: number; keys: Omit<NewDeviceKeys, 'accountSignature'>; certification: Certification | undefined; now: number }): Promise<PublishKeysOutcome>;
  /**
   * account_publish. A different key than the stored one needs `reset`; a
   * reset needs a device holding a certificate, or `passwordConfirmed`.
   */
  publishAccountKey(input: { userId: number; deviceId: number; accountKey: string; signature: string; reset: boolean; passwordConfirmed: boolean; now: number }): Promise<PublishAccountOutcome>;
  /** device_approve: stores the certificate if the device's keys and the account key are still those the signature was checked against. */
  approveDevice(input: ApproveDeviceInput): Promise<ApproveOutcome>;
}

/** What device_approve hands the unit: the approving device, the keys and account key the signature was checked against. */
export interface ApproveDeviceInput {
  readonly userId: number;
  readonly deviceId: number;
  readonly target: { readonly deviceId: number; readonly counter: number; readonly encKey: string };
  readonly accountKey: string;
  readonly accountSignature: string;
  readonly verified: boolean;
}
