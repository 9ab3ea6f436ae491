import type { Clock } from '../clock.js';
import { type DeviceStatement, type KeyChecker, canonical } from '../crypto/keys.js';
import { ChatError } from '../errors.js';
import type { AccountKeyRow, DeviceKeysRow } from '../storage/repositories/keys.js';
import type { Store } from '../storage/store.js';
import type { AuditLog } from './audit.js';
import { assertSignedIn } from './revocations.js';
import type { AccountKey, DeviceKeys, Fanout, Principal, Revocation } from './types.js';

export interface KeyServiceDeps {
  readonly store: Store;
  readonly clock: Clock;
  readonly fanout: Fanout;
  readonly checker: KeyChecker;
  readonly audit: AuditLog;
  readonly passwords: PasswordConfirmer;
}

/** The accounts service's password check, with its limits (AccountService.confirmPassword). */
export interface PasswordConfirmer {
  /** Throws invalid_credentials (field `field`) when the password is not the user's. */
  confirmPassword(principal: Principal, password: string, field: string): Promise<void>;
}

export interface PublishedKeys {
  /** base64 of the raw keys and signatures. */
  readonly encKey: string;
  readonly signKey: string;
  readonly counter: number;
  readonly signature: string;
  /** The account key's signature of the device's certificate; undefined while the device is pending. */
  readonly accountSignature: string | undefined;
}

export interface PublishedAccount {
  readonly accountKey: string;
  readonly signature: string;
  /** Replace a different account key (the user lost every device that held it). */
  readonly reset: boolean;
  /** The user's password: lets a device that is not approved make a reset. */
  readonly password?: string | undefined;
}

const SIGNATURE_BYTES = 64;

/**
 * Devices' and accounts' public keys for end-to-end encryption (docs/e2e.md).
 * The server checks every signature it stores and the rules that keep an
 * identity fixed (a device's sign_key never changes, no two devices share
 * one, counters never go back, an account key changes only by a reset), and
 * hands keys only to the users who share a thread with the owner (and the
 * owner's devices). It cannot vouch for them: apps compare safety numbers.
 */
export class KeyService {
  constructor(private readonly deps: KeyServiceDeps) {}

  /**
   * keys_publish: the rules of docs/protocol.md in their order. The signatures
   * are checked before the transaction (libsodium is awaited); the
   * transaction checks the stored state and writes, so two publications
   * cannot both pass a rule the other breaks.
   */
  async publish(principal: Principal, keys: PublishedKeys): Promise<{ changed: boolean }> {
    const { store, clock, checker } = this.deps;
    const statement: DeviceStatement = { userId: principal.user.id, deviceId: principal.deviceId, encKey: keys.encKey, signKey: keys.signKey, counter: keys.counter };
    const problem = await checker.deviceProblem(statement, keys.signature);
    if (problem) throw new ChatError('invalid_field', problem.message, { field: problem.field });
    if (keys.accountSignature !== undefined && !canonical(keys.accountSignature, SIGNATURE_BYTES)) {
      throw new ChatError('invalid_field', `account_signature must be ${SIGNATURE_BYTES} bytes in standard, padded base64`, { field: 'account_signature' });
    }
    const account = store.keys.accountOf(principal.user.id);
    const certified = keys.accountSignature !== undefined && account !== undefined && (await checker.certified(statement, account.account_key, keys.accountSignature));
    const stored = store.transaction(() => {
      // In the storing transaction, as for send: nothing is stored once the device's revocation has committed.
      assertSignedIn(store.devices.tokenState(principal.deviceId));
      const before = store.keys.ofDevice(principal.deviceId);
      const signKey = store.keys.signKeyOf(principal.deviceId);
      if (signKey !== undefined && signKey !== keys.signKey) {
        throw conflict('sign_key', "a device's identity key cannot change: log in again for a new device");
      }
      if (store.keys.deviceWithSignKey(keys.signKey, principal.deviceId) !== undefined) {
        throw conflict('sign_key', 'this sign_key is the identity of another device: make a new key pair for this one');
      }
      if (before && keys.counter < before.key_counter) {
        throw conflict('counter', `counter ${keys.counter} is lower than the stored ${before.key_counter}: a rollback to older keys is refused`);
      }
      const sameKeys = before !== undefined && keys.counter === before.key_counter;
      if (sameKeys && keys.encKey !== before.enc_key) {
        throw conflict('counter', `a new enc_key needs a higher counter than ${before.key_counter}`);
      }
      if (keys.accountSignature !== undefined) {
        // The account key read before the await must still be the user's: a reset in between voids the check.
        const now = store.keys.accountOf(principal.user.id);
        if (!certified || now?.account_key !== account?.account_key) {
          throw new ChatError(
            'invalid_field',
            now === undefined
              ? 'account_signature: your account has no account key yet (account_publish first)'
              : `account_signature must be your account key's Ed25519 signature of ["chatd-device-cert-v2", user_id, device_id, enc_key, sign_key, counter]`,
            { field: 'account_signature' },
          );
        }
      }
      // The same keys keep their approval when none is given; new keys (a rotation) are pending until certified again.
      const accountSignature = keys.accountSignature ?? (sameKeys ? before.account_signature : null);
      if (sameKeys && before.key_signature === keys.signature && before.account_signature === accountSignature) return undefined;
      store.keys.publish(principal.deviceId, { ...keys, accountSignature }, clock.now());
      return store.keys.ofDevice(principal.deviceId);
    });
    if (!stored) return { changed: false };
    this.announce(toDeviceKeys(stored));
    return { changed: true };
  }

  /** account_publish: sets the user's account key; a different one only with `reset`, which makes every device pending again. */
  async publishAccount(principal: Principal, account: PublishedAccount): Promise<{ changed: boolean }> {
    const { store, clock, checker } = this.deps;
    const userId = principal.user.id;
    const problem = await checker.accountProblem(userId, account.accountKey, account.signature);
    if (problem) throw new ChatError('invalid_field', problem.message, { field: problem.field });
    // argon2 is slow and async: checked before the transaction, which then needs no password check of its own.
    const confirmed = account.reset && account.password !== undefined;
    if (confirmed) await this.deps.passwords.confirmPassword(principal, account.password as string, 'password');
    const outcome = store.transaction(() => {
      assertSignedIn(store.devices.tokenState(principal.deviceId));
      const before = store.keys.accountOf(userId);
      if (before?.account_key === account.accountKey) return undefined;
      if (before && !account.reset) {
        throw conflict('account_key', 'your account already has another account key: get it from one of your approved devices, or reset with "reset": true if every device holding it is lost');
      }
      // A token alone must not reset (a thief who logged in with the password would otherwise become the
      // account): the device must hold a certificate under the current key (a reset clears every one, so
      // a stored one is current), or the frame must carry the password.
      if (before && !confirmed && store.keys.ofDevice(principal.deviceId)?.account_signature == null) {
        throw new ChatError('forbidden', 'a reset from a device that is not approved needs your password: account_publish with "password"', { field: 'password' });
      }
      store.keys.setAccount(userId, account.accountKey, account.signature, clock.now());
      const uncertified = before ? store.keys.uncertifyAll(userId) : [];
      return { reset: before !== undefined, uncertified: uncertified.map((id) => store.keys.ofDevice(id)).filter((row) => row !== undefined) };
    });
    if (!outcome) return { changed: false };
    if (outcome.reset) this.deps.audit.record('account_key_reset', { userId, deviceId: principal.deviceId, deviceIds: outcome.uncertified.map((row) => row.device_id) });
    const audience = this.audience(userId);
    this.deps.fanout.accountChanged({ userId, accountKey: account.accountKey, signature: account.signature }, audience);
    for (const row of outcome.uncertified) this.deps.fanout.keysChanged(toDeviceKeys(row), audience);
    return { changed: true };
  }

  /** device_approve: stores the account key's signature of another device of the caller's user. */
  async approve(principal: Principal, deviceId: number, accountSignature: string): Promise<{ changed: boolean }> {
    const { store, checker } = this.deps;
    const device = store.keys.ofDevice(deviceId);
    if (!device || device.user_id !== principal.user.id || device.revoked === 1) {
      throw new ChatError('not_found', `device ${deviceId} is not a current device of yours with published keys`, { field: 'device_id' });
    }
    const account = store.keys.accountOf(principal.user.id);
    if (!account) throw new ChatError('invalid_field', 'account_signature: your account has no account key yet (account_publish first)', { field: 'account_signature' });
    const certified = await checker.certified(statementOf(device), account.account_key, accountSignature);
    const stored = store.transaction(() => {
      assertSignedIn(store.devices.tokenState(principal.deviceId));
      const now = store.keys.ofDevice(deviceId);
      if (!now || now.revoked === 1) throw new ChatError('not_found', `device ${deviceId} is not a current device of yours with published keys`, { field: 'device_id' });
      // The device may have rotated, or the account been reset, while the signature was checked.
      const unchanged = now.key_counter === device.key_counter && now.enc_key === device.enc_key && store.keys.accountOf(principal.user.id)?.account_key === account.account_key;
      if (!certified || !unchanged) {
        throw new ChatError(
          'invalid_field',
          `account_signature must be your account key's Ed25519 signature of the device's ["chatd-device-cert-v2", user_id, device_id, enc_key, sign_key, counter] (counter ${now.key_counter})`,
          { field: 'account_signature' },
        );
      }
      if (now.account_signature === accountSignature) return undefined;
      store.keys.certify(deviceId, accountSignature);
      return store.keys.ofDevice(deviceId);
    });
    if (!stored) return { changed: false };
    this.announce(toDeviceKeys(stored));
    return { changed: true };
  }

  /**
   * The account keys and device keys (revoked and pending devices included)
   * of these users (all the users the caller shares a thread with, and the
   * caller, when `userIds` is undefined). Users the caller shares no thread
   * with are left out, as if they had no keys.
   */
  keys(principal: Principal, userIds: readonly number[] | undefined): { accounts: AccountKey[]; devices: DeviceKeys[] } {
    // Former members too (either side): their old messages in the caller's history must still verify.
    const visible = new Set([principal.user.id, ...this.deps.store.threads.usersEverSharingThreads(principal.user.id)]);
    const wanted = userIds === undefined ? [...visible] : userIds.filter((id) => visible.has(id));
    if (wanted.length === 0) return { accounts: [], devices: [] };
    const { store } = this.deps;
    return store.read(() => ({ accounts: store.keys.accountsOf(wanted).map(toAccountKey), devices: store.keys.ofUsers(wanted).map(toDeviceKeys) }));
  }

  /**
   * Devices were revoked (after the commit, by this process or another): each
   * one that had keys is announced with `revoked: true`. A revocation of every
   * device of a user announces all of the user's revoked devices again;
   * clients take a repeat as no change.
   */
  revoked(revocations: readonly Revocation[]): void {
    const { store } = this.deps;
    for (const revocation of revocations) {
      const rows = revocation.deviceId === null ? store.keys.revokedOfUser(revocation.userId) : [store.keys.ofDevice(revocation.deviceId)];
      for (const row of rows) if (row && row.revoked === 1) this.announce(toDeviceKeys(row));
    }
  }

  /** To the owner's devices and everyone who shares or shared a thread with the owner. */
  private announce(keys: DeviceKeys): void {
    this.deps.fanout.keysChanged(keys, this.audience(keys.userId));
  }

  /**
   * Whoever keys_get serves the owner's keys to: a change reaches everyone
   * who may hold them pinned (a former member who keeps the history hears of
   * a revocation too).
   */
  private audience(userId: number): Set<number> {
    return new Set([userId, ...this.deps.store.threads.usersEverSharingThreads(userId)]);
  }
}

function conflict(field: string, message: string): ChatError {
  return new ChatError('key_conflict', message, { field });
}

function statementOf(row: DeviceKeysRow): DeviceStatement {
  return { userId: row.user_id, deviceId: row.device_id, encKey: row.enc_key, signKey: row.sign_key, counter: row.key_counter };
}

function toDeviceKeys(row: DeviceKeysRow): DeviceKeys {
  return {
    userId: row.user_id,
    deviceId: row.device_id,
    encKey: row.enc_key,
    signKey: row.sign_key,
    counter: row.key_counter,
    signature: row.key_signature,
    accountSignature: row.account_signature,
    revoked: row.revoked === 1,
  };
}

function toAccountKey(row: AccountKeyRow): AccountKey {
  return { userId: row.user_id, accountKey: row.account_key, signature: row.signature };
}
