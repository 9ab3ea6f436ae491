import type { AccountKeyJson, DeviceKeysJson } from '../protocol/frames.js';
import { type DevicePublic, type VerifiedDevice, deviceFingerprint, isCertified, verifyAccount, verifyDevice } from './device-keys.js';
import { decode } from './e2e-bytes.js';
import type { PinnedAccount, PinnedDevice } from './e2e-records.js';
import type { IdentityChange, KeyChange } from './e2e-types.js';
import { ClientError } from './errors.js';
import { safetyNumber } from './safety-number.js';
import type { Sodium } from './sodium.js';
import type { ClientStore } from './store.js';

export interface DirectoryEvents {
  readonly keys: (change: KeyChange) => void;
  readonly identity: (change: IdentityChange) => void;
  readonly deviceRequest: (request: { device_id: number; fingerprint: string }) => void;
  readonly error: (error: unknown) => void;
}

/** This device as the directory needs it: its own keys never come from the server (review C2). */
export interface SelfDevice {
  readonly user_id: number;
  readonly device_id: number;
  readonly enc_key: string;
  readonly sign_key: string;
  readonly counter: number;
  /** Encryption keys this device had before rotations: an echo of one of them is stale, not a substitution. */
  readonly previous_enc_keys: readonly string[];
}

/** A device a message may be verified with: pinned (maybe revoked) or merely reported (then never `ok`). */
export interface Signer {
  readonly user_id: number;
  readonly signKey: Uint8Array;
  readonly fingerprint: string;
  /** Approved under its owner's pinned account key. */
  readonly trusted: boolean;
}

/**
 * Who is who, as this client decides it (the trust rules of docs/e2e.md):
 *
 * - each user's account key is pinned on first sight (trust on first use);
 *   a changed key of a verified user waits in `pending_change` (sends to them
 *   are held) until accepted, an unverified user's is taken with an
 *   `identity: changed` event;
 * - a device is pinned when first seen certified by its owner's pinned
 *   account key; after that the server cannot change its owner, its identity
 *   key or roll its counter back (refused: `keys` `changed`, `trusted: false`);
 * - this device's keys come from the store only.
 *
 * Pins are written to the store (`accounts`, `knownDevices`) as they change.
 */
export class DeviceDirectory {
  private accounts: Record<string, PinnedAccount> = {};
  private devices: Record<string, PinnedDevice> = {};
  /** The server's latest report per device, self-signature checked (and as it came, to judge it again). */
  private readonly reported = new Map<number, VerifiedDevice>();
  private readonly reportedRaw = new Map<number, DeviceKeysJson>();
  /** Devices whose current report was refused (another owner, identity or an older counter than pinned). */
  private readonly refused = new Map<number, string>();
  /** Pending own devices already announced this session (by sign key). */
  private readonly announced = new Map<number, string>();
  private self: SelfDevice | undefined;
  private ownAccountKey: string | undefined;
  /** Only a device that can approve is asked to (`device_request`). */
  private approver = false;

  constructor(
    private readonly sodium: Sodium,
    private readonly store: ClientStore,
    private readonly events: DirectoryEvents,
  ) {}

  load(accounts: Readonly<Record<string, PinnedAccount>> | undefined, devices: Readonly<Record<string, PinnedDevice>> | undefined): void {
    this.accounts = { ...accounts };
    this.devices = { ...devices };
  }

  /** This device, its user's account key (as this device holds or pinned it), and whether it holds the secret (it can approve). */
  setSelf(self: SelfDevice, ownAccountKey: string | undefined, approver: boolean): void {
    // A new account key for this user (a reset): devices asked about under the old one are asked about again.
    if (this.ownAccountKey !== undefined && ownAccountKey !== this.ownAccountKey) this.announced.clear();
    this.self = self;
    this.ownAccountKey = ownAccountKey;
    this.approver = approver;
  }

  /** The pinned account key of a user (this user's: the one this device holds). */
  accountKeyOf(userId: number): string | undefined {
    if (userId === this.self?.user_id) return this.ownAccountKey;
    return this.accounts[String(userId)]?.account_key;
  }

  pinnedAccount(userId: number): PinnedAccount | undefined {
    return this.accounts[String(userId)];
  }

  /** A verified user whose account key changed, not yet accepted: sends to threads with them wait. */
  isHeld(userId: number): boolean {
    return this.accounts[String(userId)]?.pending_change !== undefined;
  }

  // ---- learning what the server reports ----

  /** An account key from `keys` or `account_changed`. */
  learnAccount(entry: AccountKeyJson): void {
    if (!verifyAccount(this.sodium, entry)) {
      this.events.error(new ClientError('bad_reply', `user ${entry.user_id}'s account key is not signed by itself: ignored`, false));
      return;
    }
    if (entry.user_id === this.self?.user_id) {
      // This user's account key is the one this device holds or pinned. The session routes this user's entries to
      // OwnDevice.followReset (a reset elsewhere) instead; one that reaches here is the server's word against ours.
      if (this.ownAccountKey !== undefined && entry.account_key !== this.ownAccountKey) {
        this.events.error(new ClientError('key_mismatch', 'the server reports another account key for this user than the one this device holds: not trusted', false));
      }
      return;
    }
    const key = String(entry.user_id);
    const pinned = this.accounts[key];
    if (pinned?.account_key === entry.account_key) {
      if (pinned.pending_change) this.putAccount(entry.user_id, { account_key: pinned.account_key, signature: pinned.signature, verified: pinned.verified });
      return;
    }
    if (!pinned) {
      this.putAccount(entry.user_id, { account_key: entry.account_key, signature: entry.signature, verified: false });
      this.emitIdentity(entry.user_id, 'new', false, false);
      return;
    }
    if (pinned.verified) {
      if (pinned.pending_change?.account_key === entry.account_key) return;
      this.putAccount(entry.user_id, { ...pinned, pending_change: { account_key: entry.account_key, signature: entry.signature } });
      this.emitIdentity(entry.user_id, 'changed', true, true);
      return;
    }
    this.putAccount(entry.user_id, { account_key: entry.account_key, signature: entry.signature, verified: false });
    this.emitIdentity(entry.user_id, 'changed', false, false);
    this.relearn(entry.user_id);
  }

  /** Takes a held user's new account key (their devices certified by it become trusted); `verified` goes back to false. */
  acceptIdentity(userId: number): boolean {
    const pinned = this.accounts[String(userId)];
    if (!pinned?.pending_change) return false;
    this.putAccount(userId, { account_key: pinned.pending_change.account_key, signature: pinned.pending_change.signature, verified: false });
    this.relearn(userId);
    return true;
  }

  setVerified(userId: number, verified: boolean): void {
    const pinned = this.accounts[String(userId)];
    if (!pinned) throw new ClientError('not_found', `no account key is known for user ${userId}`, false);
    if (pinned.verified !== verified) this.putAccount(userId, { ...pinned, verified });
  }

  /** A device from `keys` or `keys_changed`. */
  learnDevice(keys: DeviceKeysJson): void {
    const device = verifyDevice(this.sodium, keys);
    if (!device) {
      this.events.error(new ClientError('bad_reply', `device ${keys.device_id}'s keys are not signed by its own signing key: ignored`, false));
      return;
    }
    const self = this.self;
    if (self && device.device_id === self.device_id) return this.learnSelf(self, device);
    const id = String(device.device_id);
    const pinned = this.devices[id];
    if (pinned) {
      const refusal = pinned.user_id !== device.user_id || pinned.sign_key !== device.sign_key ? 'identity'
        : device.counter < pinned.counter || (device.counter === pinned.counter && device.enc_key !== pinned.enc_key) ? 'rollback' : undefined;
      if (refusal) return this.refuse(device, pinned);
      this.refused.delete(device.device_id);
    }
    this.reported.set(device.device_id, device);
    this.reportedRaw.set(device.device_id, keys);
    const accountKey = this.accountKeyOf(device.user_id);
    const certified = accountKey !== undefined && isCertified(this.sodium, device, device.account_signature, accountKey);
    if (!pinned) {
      if (certified) {
        this.putDevice(device, device.revoked);
        if (!device.revoked) this.emitKeys(device, 'new', undefined, true);
      } else {
        this.askApproval(device);
      }
      return;
    }
    if (device.revoked && !pinned.revoked) {
      this.putDevice({ ...pinned, device_id: device.device_id }, true);
      this.emitKeys(device, 'removed', pinned.fingerprint, this.isCertifiedPin(pinned, device.device_id));
      return;
    }
    if (!certified) {
      // The pin stays; an uncertified newer key is not sealed to (the device is untrusted until certified).
      // An own device pinned under an account key since reset waits for approval again: it is asked about.
      if (!pinned.revoked && !this.isCertifiedPin(pinned, device.device_id)) this.askApproval(device);
      return;
    }
    if (device.counter > pinned.counter) {
      this.putDevice(device, pinned.revoked === true || device.revoked);
      this.emitKeys(device, 'rotated', pinned.fingerprint, true);
    } else if (device.account_signature !== pinned.account_signature) {
      // Certified again (after an accepted account key change): the pin follows.
      this.putDevice(device, pinned.revoked === true || device.revoked);
    }
  }

  /** A current device of this user that the account key has not certified: `device_request`, once per identity key, on a device that can approve. */
  private askApproval(device: VerifiedDevice): void {
    if (!this.approver || device.user_id !== this.self?.user_id || device.revoked || this.announced.get(device.device_id) === device.sign_key) return;
    this.announced.set(device.device_id, device.sign_key);
    this.events.deviceRequest({ device_id: device.device_id, fingerprint: device.fingerprint });
  }

  /**
   * A complete answer for these users (`keys_get` lists revoked devices too):
   * a device it no longer lists is not sealed to. A pinned one of a user the
   * answer names (`announced`: asked about by id, and their account key
   * listed) is reported `removed` (the pin stays, for its history); the
   * others only left this client's view (no thread shared any more).
   */
  listedFor(userIds: ReadonlySet<number> | 'all', listed: ReadonlySet<number>, announced: ReadonlySet<number>): void {
    for (const [deviceId, device] of [...this.reported]) {
      if ((userIds !== 'all' && !userIds.has(device.user_id)) || listed.has(deviceId)) continue;
      this.reported.delete(deviceId);
      this.reportedRaw.delete(deviceId);
      const pinned = this.devices[String(deviceId)];
      if (pinned && !pinned.revoked && announced.has(device.user_id)) this.emitKeys(device, 'removed', pinned.fingerprint, this.isCertifiedPin(pinned, deviceId));
    }
  }

  /** This device was just approved: the own devices that wait for approval are its to announce now. */
  announcePending(): void {
    if (this.self) this.relearn(this.self.user_id);
  }

  /** Everything the server reported for one user again (their account key changed: certificates are judged anew). */
  private relearn(userId: number): void {
    for (const keys of [...this.reportedRaw.values()]) if (keys.user_id === userId) this.learnDevice(keys);
  }

  private learnSelf(self: SelfDevice, device: VerifiedDevice): void {
    const same = device.user_id === self.user_id && device.sign_key === self.sign_key;
    if (same && device.enc_key === self.enc_key && device.counter === self.counter) return;
    // An echo of a key this device rotated away from (a keys_changed still on its way): stale, not a substitution.
    if (same && device.counter < self.counter && self.previous_enc_keys.includes(device.enc_key)) return;
    this.events.error(new ClientError('key_mismatch', `the server reports keys for this device (${device.device_id}) that are not its own: nothing is sealed to them`, false));
  }

  private refuse(device: VerifiedDevice, pinned: PinnedDevice): void {
    const report = `${device.user_id}:${device.sign_key}:${device.counter}:${device.enc_key}`;
    if (this.refused.get(device.device_id) === report) return;
    this.refused.set(device.device_id, report);
    this.emitKeys(device, 'changed', pinned.fingerprint, false);
  }

  // ---- what is trusted ----

  private trustedPin(pinned: PinnedDevice, deviceId: number): boolean {
    return !pinned.revoked && !this.refused.has(deviceId) && this.isCertifiedPin(pinned, deviceId);
  }

  /** Whether a message key may be sealed to this device: pinned, certified under the pinned account key, not revoked, not refused. */
  isTrusted(deviceId: number): boolean {
    const pinned = this.devices[String(deviceId)];
    return pinned !== undefined && this.trustedPin(pinned, deviceId);
  }

  /** The encryption key to seal to, for a trusted device the server currently lists. */
  sealKey(deviceId: number): Uint8Array | undefined {
    const pinned = this.devices[String(deviceId)];
    if (!pinned || !this.trustedPin(pinned, deviceId) || this.reported.get(deviceId)?.revoked !== false) return undefined;
    return decode(this.sodium, pinned.enc_key);
  }

  /** Who signed messages from this device: the pin (revoked ones too: their history still verifies), else the server's report. */
  signer(deviceId: number): Signer | undefined {
    const pinned = this.devices[String(deviceId)];
    if (pinned) {
      return { user_id: pinned.user_id, signKey: decode(this.sodium, pinned.sign_key), fingerprint: pinned.fingerprint, trusted: this.isCertifiedPin(pinned, deviceId) };
    }
    const reported = this.reported.get(deviceId);
    if (!reported) return undefined;
    return { user_id: reported.user_id, signKey: reported.signKey, fingerprint: reported.fingerprint, trusted: false };
  }

  /**
   * The signing key of a device of `userId` certified under the pinned
   * account key, revoked or not (not refused): whom an account-key grant may
   * come from — the grant checks itself, and the approver is often revoked
   * before the new device fetched it.
   */
  grantSigner(userId: number, deviceId: number): Uint8Array | undefined {
    const pinned = this.devices[String(deviceId)];
    if (!pinned || pinned.user_id !== userId || this.refused.has(deviceId) || !this.isCertifiedPin(pinned, deviceId)) return undefined;
    return decode(this.sodium, pinned.sign_key);
  }

  /** Certified under the owner's pinned account key (revoked or not: history from a revoked device stays `ok`). */
  private isCertifiedPin(pinned: PinnedDevice, deviceId: number): boolean {
    const accountKey = this.accountKeyOf(pinned.user_id);
    return accountKey !== undefined && isCertified(this.sodium, { ...pinned, device_id: deviceId }, pinned.account_signature, accountKey);
  }

  /** The devices of `userId` pinned as certified by `accountKey`, not revoked (whom this device knew as approved before a reset). */
  approvedUnder(userId: number, accountKey: string): number[] {
    return Object.entries(this.devices)
      .filter(([id, pinned]) => pinned.user_id === userId && !pinned.revoked
        && isCertified(this.sodium, { ...pinned, device_id: Number(id) }, pinned.account_signature, accountKey))
      .map(([id]) => Number(id));
  }

  /** The server's current report of a device (checked), for own-device decisions (approval). */
  reportOf(deviceId: number): VerifiedDevice | undefined {
    return this.reported.get(deviceId);
  }

  /** The devices the server listed for these users in its last report. */
  reportedFor(userIds: ReadonlySet<number>): VerifiedDevice[] {
    return [...this.reported.values()].filter((device) => userIds.has(device.user_id));
  }

  /** A user's pinned devices, for `fingerprints()`. */
  pinnedOf(userId: number): Array<{ device_id: number; fingerprint: string; trusted: boolean; revoked: boolean; mismatch: boolean }> {
    return Object.entries(this.devices)
      .filter(([, pinned]) => pinned.user_id === userId)
      .map(([id, pinned]) => ({
        device_id: Number(id),
        fingerprint: pinned.fingerprint,
        trusted: this.isCertifiedPin(pinned, Number(id)) && !pinned.revoked,
        revoked: pinned.revoked === true,
        mismatch: this.refused.has(Number(id)),
      }));
  }

  /** Pins a device this user just approved (its certificate made here). */
  pinApproved(device: VerifiedDevice, accountSignature: string): void {
    this.reported.set(device.device_id, { ...device, account_signature: accountSignature });
    this.putDevice({ ...device, account_signature: accountSignature }, false);
    this.emitKeys(device, 'new', undefined, true);
  }

  // ---- writing ----

  /** Only certified devices are pinned: `account_signature` is set. */
  private putDevice(device: DevicePublic & { readonly account_signature: string | null }, revoked: boolean): void {
    const pinned: PinnedDevice = {
      user_id: device.user_id,
      sign_key: device.sign_key,
      enc_key: device.enc_key,
      counter: device.counter,
      fingerprint: deviceFingerprint(this.sodium, device.user_id, device.device_id, device.sign_key),
      account_signature: device.account_signature ?? '',
      ...(revoked ? { revoked: true } : {}),
    };
    this.devices = { ...this.devices, [String(device.device_id)]: pinned };
    this.store.setE2e('knownDevices', this.devices).catch(this.events.error);
  }

  private putAccount(userId: number, pinned: PinnedAccount): void {
    this.accounts = { ...this.accounts, [String(userId)]: pinned };
    this.store.setE2e('accounts', this.accounts).catch(this.events.error);
  }

  private emitKeys(device: VerifiedDevice, reason: KeyChange['reason'], previous: string | undefined, trusted: boolean): void {
    this.events.keys({ user_id: device.user_id, device_id: device.device_id, reason, fingerprint: device.fingerprint, previous_fingerprint: previous, trusted });
  }

  private emitIdentity(userId: number, reason: 'new' | 'changed', verified: boolean, held: boolean): void {
    this.events.identity({ user_id: userId, reason, safety_number: this.safetyNumberWith(userId) ?? '', verified, held });
  }

  /** The safety number with `userId` from both pinned keys (a held change shows the new key's number: what the user is asked to accept). */
  safetyNumberWith(userId: number, useNew = true): string | undefined {
    const pinned = this.accounts[String(userId)];
    const own = this.ownAccountKey;
    if (!pinned || !own || !this.self) return undefined;
    const theirs = useNew && pinned.pending_change ? pinned.pending_change.account_key : pinned.account_key;
    return safetyNumber(this.sodium, { user_id: this.self.user_id, account_key: own }, { user_id: userId, account_key: theirs });
  }
}
