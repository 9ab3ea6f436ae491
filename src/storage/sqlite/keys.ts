import type {
  ApproveDeviceInput, ApproveOutcome,
  Certification,
  KeysStorage,
  NewDeviceKeys,
  PublishAccountOutcome,
  PublishKeysOutcome,
  StoredAccountKey,
  StoredDeviceKeys,
} from '../ports/keys.js';
import type { AccountKeyRow, DeviceKeysRow } from '../repositories/keys.js';
import type { Store } from '../store.js';
import { mapped } from './rows.js';
import { signedOut } from './signed-out.js';

/** KeysStorage on SQLite: each unit one synchronous function in the group commit. */
export class SqliteKeysStorage implements KeysStorage {
  constructor(private readonly store: Store) {}

  async deviceKeys(deviceId: number): Promise<StoredDeviceKeys | undefined> {
    return mapped(this.store.keys.ofDevice(deviceId), toStoredDeviceKeys);
  }

  async accountKey(userId: number): Promise<StoredAccountKey | undefined> {
    return mapped(this.store.keys.accountOf(userId), toStoredAccountKey);
  }

  async keysOfUsers(userIds: readonly number[]): Promise<{ accounts: StoredAccountKey[]; devices: StoredDeviceKeys[] }> {
    const { store } = this;
    return store.read(() => ({ accounts: store.keys.accountsOf(userIds).map(toStoredAccountKey), devices: store.keys.ofUsers(userIds).map(toStoredDeviceKeys) }));
  }

  async revokedDeviceKeys(userId: number): Promise<StoredDeviceKeys[]> {
    return this.store.keys.revokedOfUser(userId).map(toStoredDeviceKeys);
  }

  async usersEverSharingThreads(userId: number): Promise<number[]> {
    return this.store.threads.usersEverSharingThreads(userId);
  }

  publishDeviceKeys(input: {
    userId: number;
    deviceId: number;
    keys: Omit<NewDeviceKeys, 'accountSignature'>;
    certification: Certification | undefined;
    now: number;
  }): Promise<PublishKeysOutcome> {
    const { store } = this;
    const { keys, certification } = input;
    return store.batcher.submit((): PublishKeysOutcome => {
      const out = signedOut(store, input.deviceId);
      if (out) return out;
      const before = store.keys.ofDevice(input.deviceId);
      const signKey = store.keys.signKeyOf(input.deviceId);
      if (signKey !== undefined && signKey !== keys.signKey) return { kind: 'refused', reason: 'sign_key_changed' };
      if (store.keys.deviceWithSignKey(keys.signKey, input.deviceId) !== undefined) return { kind: 'refused', reason: 'sign_key_taken' };
      if (before && keys.counter < before.key_counter) return { kind: 'refused', reason: 'counter_lower', storedCounter: before.key_counter };
      const sameKeys = before !== undefined && keys.counter === before.key_counter;
      if (sameKeys && keys.encKey !== before.enc_key) return { kind: 'refused', reason: 'enc_key_needs_higher_counter', storedCounter: before.key_counter };
      if (certification) {
        // The account key read before the signature check must still be the user's: a reset in between voids it.
        const current = store.keys.accountOf(input.userId);
        if (current === undefined) return { kind: 'refused', reason: 'no_account_key' };
        if (!certification.verified || current.account_key !== certification.accountKey) return { kind: 'refused', reason: 'not_certified' };
      }
      // The same keys keep their approval when none is given; new keys (a rotation) are pending until certified again.
      const accountSignature = certification?.accountSignature ?? (sameKeys ? before.account_signature : null);
      if (sameKeys && before.key_signature === keys.signature && before.account_signature === accountSignature) return { kind: 'unchanged' };
      store.keys.publish(input.deviceId, { ...keys, accountSignature }, input.now);
      return { kind: 'stored', keys: toStoredDeviceKeys(store.keys.ofDevice(input.deviceId) as DeviceKeysRow) };
    });
  }

  publishAccountKey(input: { userId: number; deviceId: number; accountKey: string; signature: string; reset: boolean; passwordConfirmed: boolean; now: number }): Promise<PublishAccountOutcome> {
    const { store } = this;
    return store.batcher.submit((): PublishAccountOutcome => {
      const out = signedOut(store, input.deviceId);
      if (out) return out;
      const before = store.keys.accountOf(input.userId);
      if (before?.account_key === input.accountKey) return { kind: 'unchanged' };
      if (before && !input.reset) return { kind: 'refused', reason: 'other_account_key' };
      // A reset clears every certificate, so a stored one is under the current key.
      if (before && !input.passwordConfirmed && store.keys.ofDevice(input.deviceId)?.account_signature == null) return { kind: 'refused', reason: 'not_approved' };
      store.keys.setAccount(input.userId, input.accountKey, input.signature, input.now);
      const uncertified = before ? store.keys.uncertifyAll(input.userId) : [];
      return {
        kind: 'stored',
        reset: before !== undefined,
        uncertified: uncertified.map((id) => store.keys.ofDevice(id)).filter((row) => row !== undefined).map(toStoredDeviceKeys),
      };
    });
  }

  approveDevice(input: ApproveDeviceInput): Promise<ApproveOutcome> {
    const { store } = this;
    return store.batcher.submit((): ApproveOutcome => {
      const out = signedOut(store, input.deviceId);
      if (out) return out;
      const now = store.keys.ofDevice(input.target.deviceId);
      if (!now || now.user_id !== input.userId || now.revoked === 1) return { kind: 'refused', reason: 'no_device' };
      // The device may have rotated, or the account been reset, while the signature was checked.
      const unchanged =
        now.key_counter === input.target.counter && now.enc_key === input.target.encKey && store.keys.accountOf(input.userId)?.account_key === input.accountKey;
      if (!input.verified || !unchanged) return { kind: 'refused', reason: 'not_certified', storedCounter: now.key_counter };
      if (now.account_signature === input.accountSignature) return { kind: 'unchanged' };
      store.keys.certify(input.target.deviceId, input.accountSignature);
      return { kind: 'stored', keys: toStoredDeviceKeys(store.keys.ofDevice(input.target.deviceId) as DeviceKeysRow) };
    });
  }
}

function toStoredDeviceKeys(row: DeviceKeysRow): StoredDeviceKeys {
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

function toStoredAccountKey(row: AccountKeyRow): StoredAccountKey {
  return { userId: row.user_id, accountKey: row.account_key, signature: row.signature };
}
