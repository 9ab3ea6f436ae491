/**
 * What a client store keeps for end-to-end encryption (docs/client.md,
 * "Stores"), and the checks a store runs on it when it loads: a malformed
 * secret must stop the client (`store_corrupt`), never make it start over
 * with a new identity.
 */

/** This device's key pairs, base64 (they never leave the device: a store that syncs must not sync them). */
export interface DeviceSecrets {
  readonly device_id: number;
  /** +1 at every rotation of the encryption key (the spec's `counter`). */
  readonly counter: number;
  readonly enc_public: string;
  readonly enc_secret: string;
  readonly sign_public: string;
  readonly sign_secret: string;
  /** Encryption key pairs from before rotations, newest first: what was sealed to them still opens until `oldKeysTtlMs` after `retired_at`. */
  readonly previous_enc?: ReadonlyArray<{ readonly public: string; readonly secret: string; readonly retired_at: number }>;
}

/** This user's account key; the secret once this device was approved (or made it). */
export interface OwnAccount {
  readonly user_id: number;
  readonly account_key: string;
  readonly account_secret?: string;
  /**
   * Set while a reset this device makes (`resetAccount`) is not yet known to
   * have reached the server: the next connect publishes it again instead of
   * taking the server's (older) key for another device's reset.
   */
  readonly resetting?: true;
  /**
   * With `resetting`: the account as it was before the reset (the key it
   * replaces, with its secret when held). The reset is published again only
   * while the server still reports that key (or already the new one); when
   * it reports a third key (another device reset meanwhile) or refuses, the
   * mark is dropped, this record comes back and the other reset is followed.
   */
  readonly resetting_from?: OwnAccount;
  /**
   * Set while the account key this device made as the user's first device is
   * not yet known to have reached the server: the next connect
   * publishes it again, or, when another device's key won meanwhile, takes
   * that one and waits like any new device (no reset, no alarm).
   */
  readonly creating?: true;
  /**
   * After a reset this device did not make, while it waits for the new key:
   * the own devices it knew as approved under the old key (certified by it,
   * not revoked). The new key's grant is taken only from one of them, so a
   * server cannot make this device follow a key it invents with a device of
   * its own. Absent for a device that never held the old key.
   */
  readonly grantors?: readonly number[];
  /**
   * The account keys this device held (with their secret) before the current
   * one, newest first, at most MAX_FORMER_KEYS: the server reporting one of
   * them again is a rollback (its database restored from before a reset),
   * answered by publishing the current key again, never followed.
   */
  readonly former_keys?: readonly string[];
  /**
   * After following a reset this device did not make: the account key it
   * held until then, with its secret, kept until a grant of a new key is
   * accepted. Should the server report that key again (another device
   * undid a rollback), this device takes it back instead of staying pending.
   */
  readonly kept?: { readonly account_key: string; readonly account_secret: string };
}

/** How many former account keys a device remembers (former_keys). */
export const MAX_FORMER_KEYS = 10;

/** A device as first seen approved by its owner's account key (trust on first use, per device). */
export interface PinnedDevice {
  readonly user_id: number;
  readonly sign_key: string;
  readonly enc_key: string;
  readonly counter: number;
  readonly fingerprint: string;
  /** The owner's account key's signature over the device (its certificate), as last accepted. */
  readonly account_signature: string;
  readonly revoked?: boolean;
}

/** A user's account key as first seen; `pending_change`: a new key seen for a verified user, not yet accepted. */
export interface PinnedAccount {
  readonly account_key: string;
  readonly signature: string;
  readonly verified: boolean;
  readonly pending_change?: { readonly account_key: string; readonly signature: string };
}

/** Whether a thread was ever seen encrypted (`encrypted`) or requiring encryption (`required`): it never gets plaintext again. */
export type ThreadEncryption = 'encrypted' | 'required';

/** Everything the encryption keeps, by store field. Each is written whole (`ClientStore.setE2e`). */
export interface E2eRecords {
  deviceSecrets: DeviceSecrets;
  account: OwnAccount;
  /** device id → pinned device. */
  knownDevices: Readonly<Record<string, PinnedDevice>>;
  /** user id → pinned account key. */
  accounts: Readonly<Record<string, PinnedAccount>>;
  /** thread id → why it stays encrypted. */
  e2eThreads: Readonly<Record<string, ThreadEncryption>>;
  /** thread id → seq → message key (base64), shared by another own device. */
  historyKeys: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** grant id → the history module's progress record (outgoing next part, incoming parts received). */
  grants: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** msg_id (base64, 16 bytes) → sent_at of device messages handled here: a replay is recognised (device-message-log.ts). */
  deviceMessagesSeen: Readonly<Record<string, number>>;
  /** Own devices approved here that still wait for their account-key grant (sent again at every connect). */
  owedGrants: readonly number[];
}

export type E2eField = keyof E2eRecords;
export type E2eState = { readonly [K in E2eField]?: E2eRecords[K] };

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const isId = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) > 0;
/** Standard padded base64 of exactly `bytes` bytes. */
const isKey = (value: unknown, bytes: number): boolean => typeof value === 'string' && B64.test(value) && value.length === Math.ceil(bytes / 3) * 4;

/** Each field's check: the reason it is malformed, or undefined. */
const CHECKS: { readonly [K in E2eField]: (value: unknown) => string | undefined } = {
  deviceSecrets: (v) => {
    if (!isObject(v) || !isId(v.device_id) || !isId(v.counter)) return 'device_id and counter must be positive integers';
    if (!isKey(v.enc_public, 32) || !isKey(v.enc_secret, 32) || !isKey(v.sign_public, 32) || !isKey(v.sign_secret, 64)) return 'a key is not base64 of its size';
    if (v.previous_enc !== undefined) {
      if (!Array.isArray(v.previous_enc)) return 'previous_enc must be a list';
      for (const pair of v.previous_enc as unknown[]) {
        if (!isObject(pair) || !isKey(pair.public, 32) || !isKey(pair.secret, 32) || typeof pair.retired_at !== 'number') return 'a previous encryption key is malformed';
      }
    }
    return undefined;
  },
  account: (v) => checkAccount(v, true),
  knownDevices: (v) => eachEntry(v, (d) =>
    isObject(d) && isId(d.user_id) && isKey(d.sign_key, 32) && isKey(d.enc_key, 32) && isId(d.counter) && typeof d.fingerprint === 'string'
    && isKey(d.account_signature, 64) && (d.revoked === undefined || typeof d.revoked === 'boolean')),
  accounts: (v) => eachEntry(v, (a) =>
    isObject(a) && isKey(a.account_key, 32) && isKey(a.signature, 64) && typeof a.verified === 'boolean'
    && (a.pending_change === undefined || (isObject(a.pending_change) && isKey(a.pending_change.account_key, 32) && isKey(a.pending_change.signature, 64)))),
  e2eThreads: (v) => eachEntry(v, (why) => why === 'encrypted' || why === 'required'),
  historyKeys: (v) => eachEntry(v, (seqs) => eachEntry(seqs, (key) => isKey(key, 32)) === undefined),
  grants: (v) => (isObject(v) && Object.values(v).every(isObject) ? undefined : 'must map grant ids to objects'),
  deviceMessagesSeen: (v) =>
    isObject(v) && Object.entries(v).every(([id, at]) => isKey(id, 16) && Number.isSafeInteger(at)) ? undefined : 'must map message ids (base64, 16 bytes) to times',
  owedGrants: (v) => (Array.isArray(v) && v.every(isId) ? undefined : 'must be a list of device ids'),
};

/** An `account` record's check; `outer`: the stored record itself (a `resetting_from` inside it may not be resetting again). */
function checkAccount(v: unknown, outer: boolean): string | undefined {
  if (!isObject(v) || !isId(v.user_id) || !isKey(v.account_key, 32)) return 'user_id or account_key is malformed';
  if (v.account_secret !== undefined && !isKey(v.account_secret, 64)) return 'account_secret is not base64 of 64 bytes';
  if (v.resetting !== undefined && (!outer || v.resetting !== true || v.account_secret === undefined)) return 'resetting must be true, with account_secret';
  if (v.resetting_from !== undefined) {
    if (v.resetting !== true) return 'resetting_from goes with resetting';
    const problem = checkAccount(v.resetting_from, false);
    if (problem) return `resetting_from: ${problem}`;
  }
  if (v.creating !== undefined && (v.creating !== true || v.account_secret === undefined)) return 'creating must be true, with account_secret';
  if (v.grantors !== undefined && (!Array.isArray(v.grantors) || !v.grantors.every(isId) || v.account_secret !== undefined)) return 'grantors must be device ids, without account_secret';
  if (v.former_keys !== undefined && (!Array.isArray(v.former_keys) || !v.former_keys.every((key) => isKey(key, 32)))) return 'former_keys must be account keys';
  if (v.kept !== undefined && (!isObject(v.kept) || !isKey(v.kept.account_key, 32) || !isKey(v.kept.account_secret, 64))) return 'kept must be an account key with its secret';
  return undefined;
}

/** A map keyed by positive integer ids whose every value passes `valid`. */
function eachEntry(value: unknown, valid: (entry: unknown) => boolean): string | undefined {
  if (!isObject(value)) return 'must be an object';
  for (const [key, entry] of Object.entries(value)) {
    if (!isId(Number(key)) || String(Number(key)) !== key) return `key ${JSON.stringify(key)} is not an id`;
    if (!valid(entry)) return `entry ${key} is malformed`;
  }
  return undefined;
}

export const E2E_FIELDS = Object.keys(CHECKS) as E2eField[];

/**
 * The encryption fields of a stored document, each checked; throws with the
 * field and the reason when one is present but malformed (the caller turns it
 * into `store_corrupt`). Absent fields stay absent.
 */
export function checkE2eState(document: Readonly<Record<string, unknown>>): E2eState {
  const state: Record<string, unknown> = {};
  for (const field of E2E_FIELDS) {
    const value = document[field];
    if (value === undefined) continue;
    const problem = CHECKS[field](value);
    if (problem) throw new Error(`${field}: ${problem}`);
    state[field] = value;
  }
  return state as E2eState;
}
