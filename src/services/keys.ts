import type { Clock } from '../clock.js';
import { type DeviceStatement, type KeyChecker, canonical } from '../crypto/keys.js';
import { ChatError } from '../errors.js';
import type { KeysStorage, StoredAccountKey, StoredDeviceKeys } from '../storage/ports/keys.js';
import type { AuditLog } from './audit.js';
import { refuseSignedOut } from './revocations.js';
import type { AccountKey, DeviceKeys, Fanout, Principal, Revocation } from './types.js';

export interface KeyServiceDeps {
  readonly storage: KeysStorage;
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
   * are checked before the unit of work (libsodium is awaited); the unit
   * checks the stored state and writes, so two publications cannot both pass
   * a rule the other breaks.
   */
  async publish(principal: Principal, keys: PublishedKeys): Promise<{ changed: boolean }> {
    const { storage, clock, checker } = this.deps;
    const statement: DeviceStatement = { userId: principal.user.id, deviceId: principal.deviceId, encKey: keys.encKey, signKey: keys.signKey, counter: keys.counter };
    const problem = await checker.deviceProblem(statement, keys.signature);
    if (problem) throw new ChatError('invalid_field', problem.message, { field: problem.field });
    if (keys.accountSignature !== undefined && !canonical(keys.accountSignature, SIGNATURE_BYTES)) {
      throw new ChatError('invalid_field', `account_signature must be ${SIGNATURE_BYTES} bytes in standard, padded base64`, { field: 'account_signature' });
    }
    const account = await storage.accountKey(principal.user.id);
    const verified = keys.accountSignature !== undefined && account !== undefined && (await checker.certified(statement, account.accountKey, keys.accountSignature));
    const outcome = await storage.publishDeviceKeys({
      userId: principal.user.id,
      deviceId: principal.deviceId,
      keys: { encKey: keys.encKey, signKey: keys.signKey, counter: keys.counter, signature: keys.signature },
      certification: keys.accountSignature === undefined ? undefined : { accountSignature: keys.accountSignature, verified, accountKey: account?.accountKey },
      now: clock.now(),
    });
    switch (outcome.kind) {
      case 'signed_out':
        return refuseSignedOut(outcome.state);
      case 'unchanged':
        return { changed: false };
      case 'stored':
        await this.announce(outcome.keys);
        return { changed: true };
      case 'refused':
        switch (outcome.reason) {
          case 'sign_key_changed':
            throw conflict('sign_key', "a device's identity key cannot change: log in again for a new device");
          case 'sign_key_taken':
            throw conflict('sign_key', 'this sign_key is the identity of another device: make a new key pair for this one');
          case 'counter_lower':
            throw conflict('counter', `counter ${keys.counter} is lower than the stored ${outcome.storedCounter}: a rollback to older keys is refused`);
          case 'enc_key_needs_higher_counter':
            throw conflict('counter', `a new enc_key needs a higher counter than ${outcome.storedCounter}`);
          case 'no_account_key':
            throw new ChatError('invalid_field', 'account_signature: your account has no account key yet (account_publish first)', { field: 'account_signature' });
          case 'not_certified':
            throw new ChatError(
              'invalid_field',
              `account_signature must be your account key's Ed25519 signature of ["chatd-device-cert-v2", user_id, device_id, enc_key, sign_key, counter]`,
              { field: 'account_signature' },
            );
        }
    }
  }

  /** account_publish: sets the user's account key; a different one only with `reset`, which makes every device pending again. */
  async publishAccount(principal: Principal, account: PublishedAccount): Promise<{ changed: boolean }> {
    const { storage, clock, checker } = this.deps;
    const userId = principal.user.id;
    const problem = await checker.accountProblem(userId, account.accountKey, account.signature);
    if (problem) throw new ChatError('invalid_field', problem.message, { field: problem.field });
    // argon2 is slow and async: checked before the unit, which then needs no password check of its own.
    const confirmed = account.reset && account.password !== undefined;
    if (confirmed) await this.deps.passwords.confirmPassword(principal, account.password as string, 'password');
    const outcome = await storage.publishAccountKey({
      userId,
      deviceId: principal.deviceId,
      accountKey: account.accountKey,
      signature: account.signature,
      reset: account.reset,
      passwordConfirmed: confirmed,
      now: clock.now(),
    });
    switch (outcome.kind) {
      case 'signed_out':
        return refuseSignedOut(outcome.state);
      case 'unchanged':
        return { changed: false };
      case 'refused':
        if (outcome.reason === 'other_account_key') {
          throw conflict('account_key', 'your account already has another account key: get it from one of your approved devices, or reset with "reset": true if every device holding it is lost');
        }
        // A token alone must not reset (a thief who logged in with the password would otherwise become the
        // account): the device must hold a certificate under the current key, or the frame must carry the password.
        throw new ChatError('forbidden', 'a reset from a device that is not approved needs your password: account_publish with "password"', { field: 'password' });
      case 'stored': {
        if (outcome.reset) this.deps.audit.record('account_key_reset', { userId, deviceId: principal.deviceId, deviceIds: outcome.uncertified.map((row) => row.deviceId) });
        const audience = await this.audience(userId);
        this.deps.fanout.accountChanged({ userId, accountKey: account.accountKey, signature: account.signature }, audience);
        for (const row of outcome.uncertified) this.deps.fanout.keysChanged(row, audience);
        return { changed: true };
      }
    }
  }

  /** device_approve: stores the account key's signature of another device of the caller's user. */
  async approve(principal: Principal, deviceId: number, accountSignature: string): Promise<{ changed: boolean }> {
    const { storage, checker } = this.deps;
    const device = await storage.deviceKeys(deviceId);
    const notFound = (): ChatError => new ChatError('not_found', `device ${deviceId} is not a current device of yours with published keys`, { field: 'device_id' });
    if (!device || device.userId !== principal.user.id || device.revoked) throw notFound();
    const account = await storage.accountKey(principal.user.id);
    if (!account) throw new ChatError('invalid_field', 'account_signature: your account has no account key yet (account_publish first)', { field: 'account_signature' });
    const verified = await checker.certified(statementOf(device), account.accountKey, accountSignature);
    const outcome = await storage.approveDevice({
      userId: principal.user.id,
      deviceId: principal.deviceId,
      target: { deviceId, counter: device.counter, encKey: device.encKey },
      accountKey: account.accountKey,
      accountSignature,
      verified,
    });
    switch (outcome.kind) {
      case 'signed_out':
        return refuseSignedOut(outcome.state);
      case 'unchanged':
        return { changed: false };
      case 'stored':
        await this.announce(outcome.keys);
        return { changed: true };
      case 'refused':
        if (outcome.reason === 'no_device') throw notFound();
        throw new ChatError(
          'invalid_field',
          `account_signature must be your account key's Ed25519 signature of the device's ["chatd-device-cert-v2", user_id, device_id, enc_key, sign_key, counter] (counter ${outcome.storedCounter})`,
          { field: 'account_signature' },
        );
    }
  }

  /**
   * The account keys and device keys (revoked and pending devices included)
   * of these users (all the users the caller shares a thread with, and the
   * caller, when `userIds` is undefined). Users the caller shares no thread
   * with are left out, as if they had no keys.
   */
  async keys(principal: Principal, userIds: readonly number[] | undefined): Promise<{ accounts: AccountKey[]; devices: DeviceKeys[] }> {
    // Former members too (either side): their old messages in the caller's history must still verify.
    const visible = await this.audience(principal.user.id);
    const wanted = userIds === undefined ? [...visible] : userIds.filter((id) => visible.has(id));
    if (wanted.length === 0) return { accounts: [], devices: [] };
    const found = await this.deps.storage.keysOfUsers(wanted);
    return { accounts: found.accounts.map(toAccountKey), devices: found.devices };
  }

  /**
   * Devices were revoked (after the commit, by this process or another): each
   * one that had keys is announced with `revoked: true`. A revocation of every
   * device of a user announces all of the user's revoked devices again;
   * clients take a repeat as no change.
   */
  async revoked(revocations: readonly Revocation[]): Promise<void> {
    const { storage } = this.deps;
    for (const revocation of revocations) {
      const rows = revocation.deviceId === null ? await storage.revokedDeviceKeys(revocation.userId) : [await storage.deviceKeys(revocation.deviceId)];
      for (const row of rows) if (row?.revoked) await this.announce(row);
    }
  }

  /** To the owner's devices and everyone who shares or shared a thread with the owner. */
  private async announce(keys: DeviceKeys): Promise<void> {
    this.deps.fanout.keysChanged(keys, await this.audience(keys.userId));
  }

  /**
   * Whoever keys_get serves the owner's keys to: a change reaches everyone
   * who may hold them pinned (a former member who keeps the history hears of
   * a revocation too).
   */
  private async audience(userId: number): Promise<Set<number>> {
    return new Set([userId, ...(await this.deps.storage.usersEverSharingThreads(userId))]);
  }
}

function conflict(field: string, message: string): ChatError {
  return new ChatError('key_conflict', message, { field });
}

function statementOf(keys: StoredDeviceKeys): DeviceStatement {
  return { userId: keys.userId, deviceId: keys.deviceId, encKey: keys.encKey, signKey: keys.signKey, counter: keys.counter };
}

function toAccountKey(key: StoredAccountKey): AccountKey {
  return { userId: key.userId, accountKey: key.accountKey, signature: key.signature };
}
