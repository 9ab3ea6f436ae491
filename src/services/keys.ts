import type { Clock } from '../clock.js';
import type { KeyChecker } from '../crypto/keys.js';
import { ChatError } from '../errors.js';
import type { DeviceKeysRow } from '../storage/repositories/keys.js';
import type { Store } from '../storage/store.js';
import type { DeviceKeys, Fanout, Principal } from './types.js';

export interface KeyServiceDeps {
  readonly store: Store;
  readonly clock: Clock;
  readonly fanout: Fanout;
  readonly checker: KeyChecker;
}

export interface PublishedKeys {
  /** base64 of the raw keys and signature. */
  readonly encKey: string;
  readonly signKey: string;
  readonly signature: string;
}

/**
 * Devices' public keys for end-to-end encryption. The server checks that a
 * device's encryption key is signed by its signing key, and hands keys only
 * to the users who share a thread with the owner (and the owner's devices).
 * It cannot vouch for them: apps compare fingerprints for that (docs/e2e.md).
 */
export class KeyService {
  constructor(private readonly deps: KeyServiceDeps) {}

  /** Publishes (or rotates) the calling device's keys; a change is announced to everyone who may fetch them. */
  async publish(principal: Principal, keys: PublishedKeys): Promise<{ changed: boolean }> {
    const problem = await this.deps.checker.problem(keys.encKey, keys.signKey, keys.signature);
    if (problem) throw new ChatError('invalid_field', problem.message, { field: problem.field });
    const { store, clock, fanout } = this.deps;
    const before = store.keys.ofDevice(principal.deviceId);
    if (before && before.enc_key === keys.encKey && before.sign_key === keys.signKey) return { changed: false };
    store.transaction(() => store.keys.publish(principal.deviceId, keys, clock.now()));
    const audience = new Set([principal.user.id, ...store.threads.usersSharingThreads(principal.user.id)]);
    fanout.keysChanged(toDeviceKeys(store.keys.ofDevice(principal.deviceId) as DeviceKeysRow), audience);
    return { changed: true };
  }

  /**
   * The keys of these users' devices (all the users the caller shares a
   * thread with, and the caller, when `userIds` is undefined). Users the caller
   * shares no thread with are left out, as if they had no devices.
   */
  devices(principal: Principal, userIds: readonly number[] | undefined): DeviceKeys[] {
    const visible = new Set([principal.user.id, ...this.deps.store.threads.usersSharingThreads(principal.user.id)]);
    const wanted = userIds === undefined ? [...visible] : userIds.filter((id) => visible.has(id));
    return wanted.length === 0 ? [] : this.deps.store.keys.ofUsers(wanted).map(toDeviceKeys);
  }
}

function toDeviceKeys(row: DeviceKeysRow): DeviceKeys {
  return { userId: row.user_id, deviceId: row.device_id, encKey: row.enc_key, signKey: row.sign_key, signature: row.key_signature };
}
