import type { AccountKeyJson, DeviceKeysJson } from '../protocol/frames.js';
import {
  type AccountPair, MAX_SANE_COUNTER, accountSignature, deviceFingerprint, dropExpiredKeys, generateAccount, generateDevice, publication, rotateDevice, secretMatches, verifyAccount,
} from './device-keys.js';
import type { SelfDevice } from './device-directory.js';
import { decode } from './e2e-bytes.js';
import { type DeviceSecrets, MAX_FORMER_KEYS, type OwnAccount } from './e2e-records.js';
import type { AccountStanding } from './e2e-types.js';
import type { EncPair } from './envelope.js';
import { ClientError } from './errors.js';
import type { Call } from './connection.js';
import type { Sodium } from './sodium.js';
import type { ClientStore } from './store.js';

/**
 * This device's keys and its standing in its account (the shared spec,
 * section 1): the key pairs come from the store only, never from the server
 * (review C2); the first device of a user makes the account key; a later one
 * publishes its keys uncertified and waits until an approved device hands it
 * the account key. Secrets are written to the store before anything that
 * depends on them is published.
 */
export class OwnDevice {
  private secrets: DeviceSecrets | undefined;
  private account: OwnAccount | undefined;
  private userId = 0;

  constructor(
    private readonly sodium: Sodium,
    private readonly store: ClientStore,
    private readonly oldKeysTtlMs: number,
  ) {}

  load(secrets: DeviceSecrets | undefined, account: OwnAccount | undefined): void {
    this.secrets = secrets;
    this.account = account;
  }

  get deviceId(): number | undefined {
    return this.secrets?.device_id;
  }

  get user(): number {
    return this.userId;
  }

  get accountKey(): string | undefined {
    return this.account?.account_key;
  }

  /** Whether this device holds the account key (it can approve others and certify itself). */
  get approved(): boolean {
    return this.account?.account_secret !== undefined;
  }

  /**
   * Settles this device's keys and account key for this connection and
   * publishes them. `server` is what keys_get reports for this user.
   * Throws `key_mismatch` when the server has keys for this device id but the
   * store has none (the store was lost or replaced: a new identity under the
   * same device id is what an attacker's substitution looks like, so none is made).
   * `replaced`: the server reports another account key than the one this
   * device held, and this device did not make it (a reset elsewhere, see
   * `followReset`): the session raises the `account_reset` alarm.
   */
  async establish(
    call: Call,
    userId: number,
    deviceId: number,
    server: { accounts: readonly AccountKeyJson[]; devices: readonly DeviceKeysJson[] },
    /** The own devices this device knew as approved under the key it holds (for `followReset`). */
    vouched: readonly number[],
  ): Promise<{ state: AccountStanding['state']; replaced: boolean }> {
    this.userId = userId;
    if (this.secrets && this.secrets.device_id !== deviceId) {
      // The store was another device's (a new login on the same store): this device starts with its own keys.
      this.secrets = undefined;
    }
    if (this.account && this.account.user_id !== userId) this.account = undefined;
    if (!this.secrets) {
      if (server.devices.some((device) => device.device_id === deviceId)) {
        throw new ClientError('key_mismatch', `the server has keys for this device (${deviceId}) but the store has none: the store was lost or replaced; log in again as a new device`, false);
      }
      this.secrets = generateDevice(this.sodium, deviceId);
      await this.store.setE2e('deviceSecrets', this.secrets);
    } else {
      const kept = dropExpiredKeys(this.secrets, Date.now(), this.oldKeysTtlMs);
      if (kept !== this.secrets) {
        this.secrets = kept;
        await this.store.setE2e('deviceSecrets', kept);
      }
      await this.rotatePastServer(server.devices.find((device) => device.device_id === deviceId));
    }
    const reported = server.accounts.find((entry) => entry.user_id === userId && verifyAccount(this.sodium, entry));
    let state: AccountStanding['state'] = this.approved ? 'approved' : 'pending';
    let replaced = false;
    if (!this.account) {
      if (reported) {
        // A later device: the account key as the server reports it is pinned; the grant that brings its secret must match it.
        this.account = { user_id: userId, account_key: reported.account_key };
        await this.store.setE2e('account', this.account);
      } else {
        state = await this.createAccount(call, userId);
      }
    } else if (this.account.creating) {
      if (reported && reported.account_key !== this.account.account_key) {
        // This device's first publish was cut short and another device's key won: this one waits, pending, like any new device.
        this.account = { user_id: userId, account_key: reported.account_key };
        await this.store.setE2e('account', this.account);
        state = 'pending';
      } else {
        // Not there yet (publish it again), or there already (the reply was lost): the same key again is a no-op.
        const { creating: _creating, ...made } = this.account;
        state = await this.createAccount(call, userId, made as AccountPair);
      }
    } else if (this.account.resetting) {
      ({ state, replaced } = await this.resumeReset(call, reported, vouched));
    } else if (!reported && this.account.account_secret) {
      // The server lost it (a restored backup): this device holds it and publishes it again.
      await call({ type: 'account_publish', account_key: this.account.account_key, signature: accountSignature(this.sodium, this.account as AccountPair) });
    } else if (reported) {
      const outcome = await this.reported(call, reported, vouched);
      if (outcome === 'followed') {
        state = 'pending';
        replaced = true;
      } else if (outcome === 'restored') {
        state = 'approved';
      }
    }
    await this.publish(call);
    return { state, replaced };
  }

  /** The account key whose approved devices vouch for a reset seen now: the one held before a reset still marked `resetting`. */
  get vouchingKey(): string | undefined {
    return this.account?.resetting_from?.account_key ?? this.account?.account_key;
  }

  /**
   * A reset made here was cut short (the mark `resetting` stayed). It is
   * published again only while the server still reports the key it replaces
   * (or already this one: the reply was lost); when the server reports a
   * third key (another device reset meanwhile) or refuses the reset
   * (this device no longer approved there), the mark is dropped, the account
   * as it was before comes back, and the other key is followed like any
   * reset seen (`reported`). Re-sending it then would be refused for ever, or,
   * accepted, would silently undo the user's later reset.
   */
  private async resumeReset(
    call: Call,
    reported: AccountKeyJson | undefined,
    vouched: readonly number[],
  ): Promise<{ state: AccountStanding['state']; replaced: boolean }> {
    const account = this.account as OwnAccount;
    const from = account.resetting_from;
    const current = reported?.account_key;
    if (!from || current === undefined || current === account.account_key || current === from.account_key) {
      try {
        await this.publishReset(call);
        return { state: 'created', replaced: false };
      } catch (error) {
        // A store from before resetting_from was kept has nothing to go back to: the reset stays marked.
        if (!from || !(error instanceof ClientError) || error.retryable) throw error;
      }
    }
    this.account = from as OwnAccount;
    await this.store.setE2e('account', this.account);
    const outcome = reported ? await this.reported(call, reported, vouched) : 'same';
    if (outcome === 'followed') return { state: 'pending', replaced: true };
    return { state: this.approved ? 'approved' : 'pending', replaced: false };
  }

  /**
   * The server reports `reported` as this user's account key (at connect, or
   * confirmed after an event). `same`: the key held (or nothing to do);
   * `rollback`: it is a key this device held before the current one (the
   * server's database restored from before a reset): the current key is
   * published again with reset, and kept; `restored`: this device, pending
   * after following a reset, held that key until then and takes it back
   * (another device undid a rollback); `followed`: a reset this device did
   * not make (`followReset`).
   */
  async reported(call: Call, reported: AccountKeyJson, vouched: readonly number[]): Promise<'same' | 'rollback' | 'restored' | 'followed'> {
    const account = this.account;
    if (!account || account.resetting || account.creating || reported.user_id !== account.user_id || reported.account_key === account.account_key) return 'same';
    if (!verifyAccount(this.sodium, reported)) return 'same';
    if (account.account_secret && account.former_keys?.includes(reported.account_key)) {
      try {
        await call({ type: 'account_publish', account_key: account.account_key, signature: accountSignature(this.sodium, account as AccountPair), reset: true });
        return 'rollback';
      } catch (error) {
        // Refused (this device is not approved in the restored database): the older key is followed, this one kept aside.
        if (!(error instanceof ClientError) || error.retryable) throw error;
      }
    }
    if (!account.account_secret && account.kept?.account_key === reported.account_key) {
      const { grantors: _grantors, kept, ...rest } = account;
      this.account = { ...rest, account_key: kept.account_key, account_secret: kept.account_secret, former_keys: without(account.former_keys, kept.account_key) };
      await this.store.setE2e('account', this.account);
      return 'restored';
    }
    return (await this.followReset(reported, vouched)) ? 'followed' : 'same';
  }

  /**
   * The server reports another account key for this user than this device
   * holds, and this device did not make it: the account key was reset (by
   * another device of the user, or the server says so). The old key is void:
   * its secret is no longer used (kept aside, `kept`, only to be taken back
   * should the server report that key again), and this device stands where a brand-new device
   * stands — it takes the new key as the server reports it and waits,
   * pending, for an approved device to hand it the secret (a grant from a
   * device certified by that key, for that key: `receiveAccountKey`) — with
   * one check more when it held the old key: the grant must come from one of
   * `vouched`, the own devices it knew as approved under the old key (the
   * device that reset is one), never from a device it first sees now.
   * Returns false (nothing changed) when the key is the one held.
   */
  async followReset(reported: AccountKeyJson, vouched: readonly number[]): Promise<boolean> {
    const account = this.account;
    if (!account || account.resetting || account.creating || reported.user_id !== account.user_id || reported.account_key === account.account_key) return false;
    if (!verifyAccount(this.sodium, reported)) return false;
    // Still waiting after an earlier reset: the devices known then stay the ones a grant may come from.
    const grantors = account.account_secret ? [...vouched] : account.grantors;
    // The secret held until now is kept aside (not used) until a grant of a new key is accepted: should the
    // server go back to it (a rollback undone by another device), this device takes it back.
    const kept = account.account_secret ? { account_key: account.account_key, account_secret: account.account_secret } : account.kept;
    const former_keys = account.account_secret ? remember(account.former_keys, account.account_key) : account.former_keys;
    this.account = {
      user_id: account.user_id,
      account_key: reported.account_key,
      ...(grantors ? { grantors } : {}),
      ...(kept ? { kept } : {}),
      ...(former_keys ? { former_keys } : {}),
    };
    await this.store.setE2e('account', this.account);
    return true;
  }

  /**
   * Replaces this user's account key with a new one made here (docs/e2e.md,
   * "Resetting the account key"): stored first (marked `resetting` until the
   * server has it), published with `reset: true` (the server makes every
   * device of the user pending), then this device certifies itself with it.
   * A refusal by the server puts the old key back; a dropped connection
   * leaves the mark, and the next connect publishes the reset again.
   *
   * With `password` (a device that is not approved: the server wants the
   * user's password for a reset from it): the password is never stored, so a
   * reset cut short could not be published again at the next connect; the new
   * key is kept only once the server has it. (If the server got it and the
   * reply was lost, the next connect sees a reset this device did not make:
   * pending, with the alarm; the user resets again.)
   */
  async resetAccount(call: Call, options: { readonly password?: string } = {}): Promise<void> {
    this.requireSecrets();
    // A reset still marked (cut short) is replaced by this one; the account from before it is what this one replaces.
    const previous = this.account?.resetting ? this.account.resetting_from : this.account;
    const { account } = generateAccount(this.sodium, this.userId);
    const former_keys = previous?.account_secret ? remember(previous.former_keys, previous.account_key) : previous?.former_keys;
    const made: OwnAccount = { ...account, ...(former_keys ? { former_keys } : {}) };
    if (options.password !== undefined) {
      await call({ type: 'account_publish', account_key: account.account_key, signature: accountSignature(this.sodium, account), reset: true, password: options.password });
      this.account = made;
      await this.store.setE2e('account', made);
      return this.publish(call);
    }
    this.account = { ...made, resetting: true, ...(previous ? { resetting_from: previous } : {}) };
    await this.store.setE2e('account', this.account);
    try {
      await this.publishReset(call);
    } catch (error) {
      if (error instanceof ClientError && !error.retryable) {
        // Refused: the account as it was (a reset marked earlier and cut short stays dropped: this one replaced it).
        this.account = previous;
        if (previous) await this.store.setE2e('account', previous);
      }
      throw error;
    }
    await this.publish(call);
  }

  /** account_publish with reset for the key marked `resetting`, then the mark is dropped. */
  private async publishReset(call: Call): Promise<void> {
    const { resetting: _resetting, resetting_from: _from, ...account } = this.account as OwnAccount;
    const pair = account as AccountPair;
    await call({ type: 'account_publish', account_key: pair.account_key, signature: accountSignature(this.sodium, pair), reset: true });
    this.account = account;
    await this.store.setE2e('account', account);
  }

  /**
   * The first device: a new account key (or the one `made` at a connect that
   * was cut short), stored marked `creating`, then published, then the mark
   * dropped; another device that won the race makes this one pending. A
   * publish that fails otherwise (a dropped connection) leaves the mark: the
   * next connect finishes (establish), instead of taking the winner's key
   * for a reset.
   */
  private async createAccount(call: Call, userId: number, made?: AccountPair): Promise<AccountStanding['state']> {
    const account = made ?? generateAccount(this.sodium, userId).account;
    this.account = { ...account, creating: true };
    await this.store.setE2e('account', this.account);
    try {
      await call({ type: 'account_publish', account_key: account.account_key, signature: accountSignature(this.sodium, account) });
    } catch (error) {
      if (!(error instanceof ClientError) || error.code !== 'key_conflict') throw error;
      const { accounts } = await call({ type: 'keys_get', user_ids: [userId] });
      const winner = accounts.find((entry) => entry.user_id === userId && verifyAccount(this.sodium, entry));
      if (!winner) throw error;
      this.account = { user_id: userId, account_key: winner.account_key };
      await this.store.setE2e('account', this.account);
      return 'pending';
    }
    this.account = account;
    await this.store.setE2e('account', account);
    return 'created';
  }

  /**
   * The server holds a later counter for this device under the same identity
   * key than the store has (a store restored from a backup taken before a
   * rotation): publishing the stored keys would be refused as a
   * rollback for ever, so the device rotates to a counter past the server's.
   * A server that inflates the counter gains nothing: this device rotates
   * (and keeps at most MAX_PREVIOUS_ENC old pairs). A counter above
   * MAX_SANE_COUNTER is refused with `key_mismatch` instead: no backup
   * explains it, and rotating past it would bring this device near counters
   * it can no longer raise. (Messages sealed to the lost key stay unreadable here.)
   */
  private async rotatePastServer(reported: DeviceKeysJson | undefined): Promise<void> {
    const secrets = this.secrets as DeviceSecrets;
    if (!reported || reported.sign_key !== secrets.sign_public) return;
    if (!Number.isSafeInteger(reported.counter) || reported.counter > MAX_SANE_COUNTER) {
      throw new ClientError(
        'key_mismatch',
        `the server reports key counter ${reported.counter} for this device (its store has ${secrets.counter}): no rotation goes that far; the server's keys for this device were tampered with, so this device does not follow them`,
        false,
      );
    }
    const behind = reported.counter > secrets.counter || (reported.counter === secrets.counter && reported.enc_key !== secrets.enc_public);
    if (!behind) return;
    this.secrets = rotateDevice(this.sodium, { ...secrets, counter: reported.counter }, Date.now(), this.oldKeysTtlMs);
    await this.store.setE2e('deviceSecrets', this.secrets);
  }

  /** keys_publish: the keys, certified when this device holds the account key. */
  async publish(call: Call): Promise<void> {
    const secrets = this.requireSecrets();
    await call({ type: 'keys_publish', ...publication(this.sodium, secrets, this.userId, this.account) });
  }

  /** A new encryption key (counter + 1), stored; `publish` next (after the directory knows it: the server's echo must match). */
  async rotate(): Promise<void> {
    this.secrets = rotateDevice(this.sodium, this.requireSecrets(), Date.now(), this.oldKeysTtlMs);
    await this.store.setE2e('deviceSecrets', this.secrets);
  }

  /**
   * An `account_key` device message from `fromDevice` (an approved device of
   * this user, checked by the mailbox): kept when it is the account key this
   * device pinned, the secret is its secret half, and — after a reset seen
   * here — the sender is one of the devices known as approved before it.
   * Returns why it was refused (nothing kept), or undefined when kept.
   */
  async receiveAccountKey(call: Call, fromDevice: number, body: unknown): Promise<string | undefined> {
    const grant = body as { account_key?: unknown; account_secret?: unknown } | null;
    const account = this.account;
    if (!account || account.account_secret) return 'this device holds the account key already';
    if (typeof grant?.account_key !== 'string' || typeof grant.account_secret !== 'string') return 'malformed';
    if (grant.account_key !== account.account_key || !secretMatches(this.sodium, grant.account_key, grant.account_secret)) {
      return 'not this account\'s key (or not its secret)';
    }
    if (account.grantors && !account.grantors.includes(fromDevice)) {
      return `after the reset, the new key is taken only from a device this one knew as approved before it (${account.grantors.join(', ') || 'none'}), not from device ${fromDevice}`;
    }
    // A grant of the new key accepted: the secret kept aside since the reset is dropped.
    this.account = {
      user_id: account.user_id,
      account_key: account.account_key,
      account_secret: grant.account_secret,
      ...(account.former_keys ? { former_keys: account.former_keys } : {}),
    };
    await this.store.setE2e('account', this.account);
    await this.publish(call);
    return undefined;
  }

  /** The account key pair, for handing to a device this one approves. */
  accountGrant(): { account_key: string; account_secret: string } {
    const account = this.account;
    if (!account?.account_secret) throw new ClientError('forbidden', 'this device is not approved: it cannot approve others', false);
    return { account_key: account.account_key, account_secret: account.account_secret };
  }

  self(): SelfDevice {
    const secrets = this.requireSecrets();
    return {
      user_id: this.userId,
      device_id: secrets.device_id,
      enc_key: secrets.enc_public,
      sign_key: secrets.sign_public,
      counter: secrets.counter,
      previous_enc_keys: (secrets.previous_enc ?? []).map((pair) => pair.public),
    };
  }

  fingerprint(): string {
    const secrets = this.requireSecrets();
    return deviceFingerprint(this.sodium, this.userId, secrets.device_id, secrets.sign_public);
  }

  signSecret(): Uint8Array {
    return decode(this.sodium, this.requireSecrets().sign_secret);
  }

  signKey(): Uint8Array {
    return decode(this.sodium, this.requireSecrets().sign_public);
  }

  encKey(): Uint8Array {
    return decode(this.sodium, this.requireSecrets().enc_public);
  }

  /** The current encryption key pair, then the ones from before rotations (not yet expired). */
  pairs(): EncPair[] {
    const secrets = this.requireSecrets();
    return [{ public: secrets.enc_public, secret: secrets.enc_secret }, ...(secrets.previous_enc ?? [])].map((pair) => ({
      public: decode(this.sodium, pair.public),
      secret: decode(this.sodium, pair.secret),
    }));
  }

  private requireSecrets(): DeviceSecrets {
    if (!this.secrets) throw new ClientError('disconnected', 'encryption starts with the first connection', true);
    return this.secrets;
  }
}

/** `key` first in a list of former account keys, at most MAX_FORMER_KEYS. */
function remember(former: readonly string[] | undefined, key: string): string[] {
  return [key, ...without(former, key)].slice(0, MAX_FORMER_KEYS);
}

function without(former: readonly string[] | undefined, key: string): string[] {
  return (former ?? []).filter((entry) => entry !== key);
}
