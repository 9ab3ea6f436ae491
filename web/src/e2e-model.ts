import type { ChatClient, DeviceRequest, HistoryReceived, IdentityChange, ThreadJson } from '../../src/client/browser.js';
import type { LocalStorageStore } from './local-store.js';

/** A device approved from here, offered this device's history: where the offer stands. */
export type HistoryOffer =
  | { readonly state: 'offered' }
  | { readonly state: 'sharing'; readonly part: number; readonly parts: number }
  | { readonly state: 'shared'; readonly messages: number; readonly truncated: boolean }
  | { readonly state: 'failed'; readonly error: string };

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * What the screens show of end-to-end encryption, kept from the SDK's events:
 * this device's standing (approved, or waiting for approval with the code to
 * compare), other devices of the user asking to join, contacts whose safety
 * number changed, the alarms, and history handed over between own devices.
 * Verified and held contacts are read from the store the SDK writes (one
 * truth, and it is current after a reload without waiting for events).
 */
export class EncryptionModel {
  standing: 'approved' | 'pending' | 'created' | undefined;
  /** This device's fingerprint, once its keys exist. */
  fingerprint: string | undefined;
  /** Devices of this user waiting for approval, by device id. */
  readonly requests = new Map<number, DeviceRequest>();
  /** Devices approved from here in this session: the history offer. */
  readonly offers = new Map<number, HistoryOffer>();
  /** History arriving from another own device, by grant id. */
  readonly incoming = new Map<string, HistoryReceived>();
  /** Contacts whose account key changed while this page was open (the warning in their threads). */
  readonly identityChanges = new Map<number, IdentityChange>();
  /** Contacts whose new account key holds sends (from the event; the store says it after a reload). */
  private readonly held = new Set<number>();
  /** Security alarms from the SDK (key_mismatch, untrusted_devices, encryption_downgrade, store_corrupt). */
  alarms: string[] = [];

  constructor(
    private readonly client: ChatClient,
    private readonly selfId: number,
    private readonly store: LocalStorageStore,
    private readonly changed: () => void,
    /** After history arrived: messages shown undecryptable may open now. */
    private readonly historyArrived: () => void,
  ) {
    client.on('account', ({ state }) => {
      this.standing = state;
      this.readFingerprint();
      if (state !== 'pending') void this.refreshRequests();
      this.changed();
    });
    client.on('device_request', (request) => {
      this.requests.set(request.device_id, request);
      this.changed();
    });
    client.on('keys', (change) => {
      // An own device approved (from here or elsewhere) or revoked: no longer asking.
      if (this.requests.has(change.device_id) && (change.reason === 'removed' || change.trusted)) {
        this.requests.delete(change.device_id);
        this.changed();
      }
    });
    client.on('identity', (change) => {
      if (change.reason === 'changed') this.identityChanges.set(change.user_id, change);
      if (change.held) this.held.add(change.user_id);
      this.changed();
    });
    client.on('error', (error) => {
      const code = (error as { code?: string }).code;
      // The same alarm again (at each reconnect, say) is one warning.
      const text = code === 'account_reset' ? RESET_ELSEWHERE : error.message;
      if (code && ALARMS.has(code) && !this.alarms.includes(text)) {
        this.alarms = [...this.alarms, text];
        this.changed();
      }
    });
    client.on('history_progress', (progress) => {
      this.offers.set(progress.to_device, { state: 'sharing', part: progress.part, parts: progress.parts });
      this.changed();
    });
    client.on('history', (received) => {
      this.incoming.set(received.grant_id, received);
      if (received.parts_received >= received.parts) this.historyArrived();
      this.changed();
    });
  }

  /** Once online: the pending devices the SDK knew before this page listened. */
  async refreshRequests(): Promise<void> {
    if (this.standing === 'pending' || this.standing === undefined) return;
    try {
      for (const device of await this.client.devices()) {
        if (device.state === 'pending') this.requests.set(device.device_id, { device_id: device.device_id, fingerprint: device.fingerprint });
        else this.requests.delete(device.device_id);
      }
      this.changed();
    } catch {
      // Offline or keys not settled yet: the device_request events still come.
    }
  }

  private readFingerprint(): void {
    try {
      this.fingerprint = this.client.ownFingerprint();
    } catch {
      // No keys yet: the next `account` event brings them.
    }
  }

  async approve(request: DeviceRequest): Promise<void> {
    await this.client.approveDevice(request.device_id, { fingerprint: request.fingerprint });
    this.requests.delete(request.device_id);
    this.offers.set(request.device_id, { state: 'offered' });
  }

  /**
   * A new account key made here (a stolen device was removed, or every other device is lost): this device
   * becomes the account's, the others wait for approval again, contacts see a new safety number. A waiting
   * device gives the user's password (the server takes a reset from it only then).
   */
  async resetAccount(password?: string): Promise<void> {
    await this.client.resetAccount(password === undefined ? {} : { password });
    this.readFingerprint();
    await this.refreshRequests();
  }

  async reject(deviceId: number): Promise<void> {
    await this.client.rejectDevice(deviceId);
    this.requests.delete(deviceId);
  }

  /** Hands this device's message keys to `deviceId`: every thread, or only what is newer than 30 days. */
  async shareHistory(deviceId: number, scope: 'all' | 'month'): Promise<void> {
    this.offers.set(deviceId, { state: 'sharing', part: 0, parts: 0 });
    this.changed();
    try {
      const { messages, truncated } = await this.client.shareHistory(deviceId, scope === 'month' ? { since: Date.now() - 30 * DAY_MS } : {});
      this.offers.set(deviceId, { state: 'shared', messages, truncated });
    } catch (error) {
      this.offers.set(deviceId, { state: 'failed', error: (error as Error).message });
    }
    this.changed();
  }

  dismissOffer(deviceId: number): void {
    this.offers.delete(deviceId);
    this.changed();
  }

  dismissIncoming(grantId: string): void {
    this.incoming.delete(grantId);
    this.changed();
  }

  dismissAlarm(index: number): void {
    this.alarms = this.alarms.filter((_, at) => at !== index);
    this.changed();
  }

  /** Contacts the user verified (by safety number or QR code) whose identity has not changed since. */
  isVerified(userId: number): boolean {
    const pinned = this.store.pinnedAccounts()[String(userId)];
    return pinned?.verified === true && pinned.pending_change === undefined;
  }

  /** Sends to threads with this contact wait until the user accepts their new safety number. */
  isHeld(userId: number): boolean {
    return this.held.has(userId) || this.store.pinnedAccounts()[String(userId)]?.pending_change !== undefined;
  }

  async acceptIdentity(userId: number): Promise<void> {
    await this.client.acceptIdentity(userId);
    this.held.delete(userId);
  }

  /** The thread takes only encrypted messages, or was seen encrypted (the SDK then never sends it plaintext). */
  isEncrypted(thread: ThreadJson): boolean {
    return thread.e2e_required || this.store.encryptedThreads()[String(thread.id)] !== undefined;
  }

  /**
   * Whether every one of these users (this user included) has a device its
   * owner's account key approved: then a new chat with them is encrypted.
   * Any doubt (keys not to be had) means plain: a chat nobody can read is worse.
   */
  async allTrusted(userIds: readonly number[]): Promise<boolean> {
    // This user: this device itself is approved (fingerprints() lists the others, as pinned).
    if (this.standing === 'pending' || this.standing === undefined) return false;
    try {
      for (const userId of userIds) {
        if (userId === this.selfId) continue;
        const devices = await this.client.fingerprints(userId);
        if (!devices.some((device) => device.trusted && !device.revoked && !device.mismatch)) return false;
      }
      return true;
    } catch {
      return false;
    }
  }
}

const ALARMS = new Set(['key_mismatch', 'untrusted_devices', 'encryption_downgrade', 'account_reset', 'store_corrupt']);
const RESET_ELSEWHERE =
  'Your account key was reset on another of your devices, so this device waits for approval again. If you did not reset it, someone else may control your account: change your password and remove the devices you do not know.';

/** A code (fingerprint or safety number) as groups of five characters, the way people read them aloud. */
export function groupsOfFive(code: string): string[] {
  return code.replace(/\s+/g, '').match(/.{1,5}/g) ?? [];
}
