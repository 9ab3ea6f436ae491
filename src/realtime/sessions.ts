import type { CloseReason } from '../errors.js';
import { revocationMessage } from '../services/revocations.js';
import type { Revocation, RevocationListener } from '../services/types.js';

/** What the registry needs of a live session. */
export interface LiveSession {
  /** The authenticated device, or undefined before authentication. */
  readonly deviceId: number | undefined;
  /** The authenticated device's user, or undefined before authentication. */
  readonly userId: number | undefined;
  /** Unix ms after which the session is dead (no auth, or no heartbeat). */
  readonly deadline: number;
  close(reason: CloseReason, message: string): void;
  /** Closes the session because its deadline passed, with the close reason that fits its state. */
  expire(): void;
  /** Closes the session if too much is queued for it (slow consumer). */
  checkBackpressure(): void;
  /** An encoded event for this device alone; sent once the session follows its live events (after inbox_done), dropped before. */
  deliver(text: string): void;
}

/**
 * Every live session of this process, by device. Closes sessions whose
 * deadline passed (one sweep for all, not a timer per socket), the sessions of
 * revoked devices, and all of them at shutdown.
 */
export class SessionRegistry implements RevocationListener {
  private readonly sessions = new Set<LiveSession>();
  private readonly byDevice = new Map<number, Set<LiveSession>>();

  /**
   * `isSignedIn` says whether a device's token works now: a revocation is
   * acted on as things stand when it arrives (a user disabled and enabled
   * again in between keeps the connections made since).
   */
  constructor(private readonly isSignedIn: (deviceId: number) => Promise<boolean>) {}

  get size(): number {
    return this.sessions.size;
  }

  add(session: LiveSession): void {
    this.sessions.add(session);
  }

  /** Records the device once the session has authenticated. */
  bind(session: LiveSession, deviceId: number): void {
    let set = this.byDevice.get(deviceId);
    if (!set) this.byDevice.set(deviceId, (set = new Set()));
    set.add(session);
  }

  remove(session: LiveSession): void {
    this.sessions.delete(session);
    if (session.deviceId === undefined) return;
    const set = this.byDevice.get(session.deviceId);
    set?.delete(session);
    if (set?.size === 0) this.byDevice.delete(session.deviceId);
  }

  /** An encoded event to every live session of one device (a device message). */
  sendToDevice(deviceId: number, text: string): void {
    for (const session of this.byDevice.get(deviceId) ?? []) session.deliver(text);
  }

  /** Number of live authenticated sessions of a device. */
  countOf(deviceId: number): number {
    return this.byDevice.get(deviceId)?.size ?? 0;
  }

  /** Closes (4006) the live sessions of the devices whose tokens no longer work: the devices named, or all of a user's. */
  revoked(revocations: readonly Revocation[]): void {
    for (const revocation of revocations) {
      const deviceIds = revocation.deviceId !== null ? [revocation.deviceId] : this.devicesOf(revocation.userId);
      for (const deviceId of deviceIds) {
        if (!this.byDevice.has(deviceId)) continue;
        void this.isSignedIn(deviceId).then(
          (signedIn) => {
            if (signedIn) return;
            for (const session of [...(this.byDevice.get(deviceId) ?? [])]) session.close('device_revoked', revocationMessage(revocation.reason));
          },
          // Unknown: the token may still work; the device's next request is refused by its unit if not.
          () => {},
        );
      }
    }
  }

  /** The user's devices with live sessions here. A scan: revoking all of a user's devices is rare. */
  private devicesOf(userId: number): number[] {
    const found: number[] = [];
    for (const [deviceId, sessions] of this.byDevice) {
      // A device belongs to one user: any of its sessions says which.
      const [session] = sessions;
      if (session?.userId === userId) found.push(deviceId);
    }
    return found;
  }

  /** Expires the sessions past their deadline and cuts slow consumers. */
  sweep(now: number): void {
    for (const session of [...this.sessions]) {
      if (session.deadline <= now) session.expire();
      else session.checkBackpressure();
    }
  }

  closeAll(reason: CloseReason, message: string): void {
    for (const session of [...this.sessions]) session.close(reason, message);
  }
}
