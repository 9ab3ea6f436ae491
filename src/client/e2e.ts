import type { DeviceKeysJson, MessageJson } from '../protocol/frames.js';
import type { ReplyOf } from './connection.js';
import { type DeviceSecrets, type E2eStatus, E2eCrypto, type Envelope, type PeerDevice } from './e2e-crypto.js';
import { ClientError } from './errors.js';
import type { RequestJson } from './requests.js';
import { loadSodium } from './sodium.js';
import type { ClientStore, KnownDevice } from './store.js';

/** A message as the app gets it: an encrypted one decrypted, with what became of it. */
export type ClientMessage = MessageJson & {
  /** Set for end-to-end encrypted messages; `body` is the decrypted body when `status` is `ok`, the envelope otherwise. */
  readonly e2e?: { readonly status: E2eStatus; readonly fingerprint: string | undefined };
};

/**
 * A device's keys appeared or changed. `new`: a device never seen before (first
 * contact); `rotated`: a new encryption key under the same identity (the
 * fingerprint is unchanged); `changed`: a different identity for a device
 * seen before: the fingerprint differs, warn the user (the server may have
 * replaced the keys).
 */
export interface KeyChange {
  readonly user_id: number;
  readonly device_id: number;
  readonly reason: 'new' | 'rotated' | 'changed';
  readonly fingerprint: string;
  /** The fingerprint remembered before (`changed`, `rotated`). */
  readonly previous_fingerprint: string | undefined;
}

export interface DeviceFingerprint {
  readonly user_id: number;
  readonly device_id: number;
  readonly fingerprint: string;
}

type Call = <R extends RequestJson>(request: R) => Promise<ReplyOf[R['type']]>;

export interface E2eSessionOptions {
  readonly store: ClientStore;
  readonly keyChanged: (change: KeyChange) => void;
  readonly reportError: (error: unknown) => void;
}

/**
 * End-to-end encryption for one client: its device's keys (made once, kept in
 * the store, published at every connect), the keys of the devices it shares
 * threads with (verified, cached, updated by `keys_changed`), and, per thread,
 * the devices a message must be sealed to (refreshed when the server says they
 * changed).
 */
export class E2eSession {
  private crypto: E2eCrypto | undefined;
  /** Settles once this connection's keys are published and the directory loaded. */
  private ready: Promise<void> | undefined;
  private readonly directory = new Map<number, PeerDevice>();
  private readonly threadDevices = new Map<number, readonly number[]>();
  /** Each known device's current encryption key (base64), to tell a rotation. */
  private readonly encKeys = new Map<number, string>();
  /** Fingerprints as first seen, kept in the store across runs. */
  private known = new Map<number, KnownDevice>();
  /** This connection's keys are published and the directory loaded. */
  private settled = false;

  constructor(private readonly options: E2eSessionOptions) {}

  /** After `welcome`: keys made (first time) or loaded (`stored`), published, and the peers' keys fetched. */
  connected(deviceId: number, call: Call, stored: DeviceSecrets | undefined, known: ReadonlyMap<number, KnownDevice>): Promise<void> {
    this.settled = false;
    for (const [id, device] of known) if (!this.known.has(id)) this.known.set(id, device);
    this.ready = (async () => {
      const sodium = await loadSodium();
      let secrets = this.crypto?.secrets.device_id === deviceId ? this.crypto.secrets : stored;
      if (!secrets || secrets.device_id !== deviceId) {
        secrets = E2eCrypto.generate(sodium, deviceId);
        await this.options.store.setDeviceSecrets(secrets);
      }
      this.crypto = new E2eCrypto(sodium, secrets);
      await call({ type: 'keys_publish', ...this.crypto.publication() });
      const { devices } = await call({ type: 'keys_get' });
      for (const keys of devices) this.learn(keys);
      // Thread membership may have changed while away.
      this.threadDevices.clear();
      this.settled = true;
    })();
    // Failures surface where the keys are needed (send, open); here only reported.
    this.ready.catch((error: unknown) => this.options.reportError(error));
    return this.ready;
  }

  /** A `keys_changed` event, or a device from `keys_get`: verified, remembered, and a change told to the app. */
  learn(keys: DeviceKeysJson): void {
    const crypto = this.crypto;
    if (!crypto) return;
    const device = crypto.verifyDevice(keys);
    if (!device) {
      this.options.reportError(new ClientError('bad_reply', `device ${keys.device_id}'s encryption key is not signed by its signing key: ignored`, false));
      return;
    }
    const remembered = this.known.get(device.deviceId);
    const encBefore = this.encKeys.get(device.deviceId);
    this.directory.set(device.deviceId, device);
    this.encKeys.set(device.deviceId, keys.enc_key);
    const reason = !remembered ? 'new' : remembered.fingerprint !== device.fingerprint ? 'changed' : encBefore !== undefined && encBefore !== keys.enc_key ? 'rotated' : undefined;
    if (!reason) return;
    // New keys somewhere: the devices threads are sealed to are fetched again.
    this.threadDevices.clear();
    if (reason !== 'rotated') {
      this.known.set(device.deviceId, { user_id: device.userId, fingerprint: device.fingerprint });
      this.options.store.rememberDevice(device.deviceId, { user_id: device.userId, fingerprint: device.fingerprint }).catch(this.options.reportError);
    }
    if (device.deviceId === crypto.secrets.device_id) return;
    this.options.keyChanged({
      user_id: device.userId,
      device_id: device.deviceId,
      reason,
      fingerprint: device.fingerprint,
      previous_fingerprint: remembered?.fingerprint,
    });
  }

  /** The fingerprints of a user's devices, as this client knows them (fetched when unknown). */
  async fingerprints(userId: number, call: Call): Promise<DeviceFingerprint[]> {
    await this.whenReady();
    const { devices } = await call({ type: 'keys_get', user_ids: [userId] });
    for (const keys of devices) this.learn(keys);
    return [...this.directory.values()]
      .filter((device) => device.userId === userId)
      .map((device) => ({ user_id: device.userId, device_id: device.deviceId, fingerprint: device.fingerprint }));
  }

  /** A new encryption key for this device, published (peers get `keys_changed`); the fingerprint stays. */
  async rotate(call: Call): Promise<string> {
    await this.whenReady();
    const sodium = await loadSodium();
    const crypto = this.requireCrypto();
    const secrets = E2eCrypto.rotated(sodium, crypto.secrets);
    await this.options.store.setDeviceSecrets(secrets);
    this.crypto = new E2eCrypto(sodium, secrets);
    await call({ type: 'keys_publish', ...this.crypto.publication() });
    return this.crypto.fingerprint(sodium.from_base64(secrets.sign_public, sodium.base64_variants.ORIGINAL));
  }

  /**
   * The envelope for an outbox entry, when the thread's devices are known; or
   * a promise that settles once they are (then ask again).
   */
  seal(threadId: number, clientMsgId: string, body: unknown, call: Call): { body: Envelope } | { wait: Promise<void> } {
    const crypto = this.crypto;
    const ids = this.threadDevices.get(threadId);
    if (!crypto || !ids) return { wait: this.refreshThread(threadId, call) };
    const devices = ids.flatMap((id) => this.directory.get(id) ?? []);
    return { body: crypto.seal(threadId, clientMsgId, body, devices) };
  }

  /** The server said the thread's devices changed: fetch its members' keys again. */
  refreshThread(threadId: number, call: Call): Promise<void> {
    this.threadDevices.delete(threadId);
    return (async () => {
      await this.whenReady();
      const { members } = await call({ type: 'thread_get', thread_id: threadId });
      const userIds = members.map((member) => member.user.id);
      const devices: DeviceKeysJson[] = [];
      // keys_get takes at most 1,000 users a request.
      for (let from = 0; from < userIds.length; from += 1000) {
        devices.push(...(await call({ type: 'keys_get', user_ids: userIds.slice(from, from + 1000) })).devices);
      }
      for (const keys of devices) this.learn(keys);
      this.threadDevices.set(
        threadId,
        devices.map((keys) => keys.device_id).filter((id) => this.directory.has(id)),
      );
    })();
  }

  /** Decrypts and verifies an e2e message now, if this device is ready and knows the sender; undefined otherwise. */
  openNow(message: MessageJson): ClientMessage | undefined {
    const crypto = this.crypto;
    const senderDevice = (message.body as Partial<Envelope> | null)?.sender_device;
    if (!crypto || !this.settled || typeof senderDevice !== 'number' || !this.directory.has(senderDevice)) return undefined;
    return this.opened(crypto, message, this.directory.get(senderDevice));
  }

  /** Decrypts and verifies an e2e message (fetching the sender's keys when unknown). */
  async open(message: MessageJson, call: Call): Promise<ClientMessage> {
    await this.whenReady();
    const crypto = this.requireCrypto();
    const envelope = message.body as Partial<Envelope> | null;
    const senderDevice = typeof envelope?.sender_device === 'number' ? envelope.sender_device : undefined;
    if (senderDevice !== undefined && !this.directory.has(senderDevice)) {
      const { devices } = await call({ type: 'keys_get', user_ids: [message.sender_id] }).catch(() => ({ devices: [] as DeviceKeysJson[] }));
      for (const keys of devices) this.learn(keys);
    }
    return this.opened(crypto, message, senderDevice === undefined ? undefined : this.directory.get(senderDevice));
  }

  private opened(crypto: E2eCrypto, message: MessageJson, sender: PeerDevice | undefined): ClientMessage {
    // A device of another user than the one the server says sent it is no proof of anything.
    const trusted = sender && sender.userId === message.sender_id ? sender : undefined;
    const opened = crypto.open(message, trusted);
    const e2e = { status: sender && !trusted ? ('bad_signature' as const) : opened.status, fingerprint: trusted?.fingerprint };
    return { ...message, body: opened.status === 'ok' ? opened.body : message.body, e2e };
  }

  private async whenReady(): Promise<void> {
    if (!this.ready) throw new ClientError('disconnected', 'encryption starts with the first connection', true);
    await this.ready;
  }

  private requireCrypto(): E2eCrypto {
    if (!this.crypto) throw new ClientError('disconnected', 'encryption starts with the first connection', true);
    return this.crypto;
  }
}
