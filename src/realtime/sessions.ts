import type { CloseReason } from '../errors.js';
import type { DeviceLinks } from '../services/live/device-links.js';
import { revocationMessage } from '../services/revocations.js';
import type { Revocation, RevocationListener } from '../services/types.js';
import type { LiveLink } from './channels.js';

/** What the registry needs of a live session. */
export interface LiveSession {
  /** Unix ms after which the session is dead (no auth, or no heartbeat). */
  readonly deadline: number;
  close(reason: CloseReason, message: string): void;
  /** Closes the session because its deadline passed, with the close reason that fits its state. */
  expire(): void;
  /** Closes the session if too much is queued for it (slow consumer). */
  checkBackpressure(): void;
}

/**
 * Every live session of this process, authenticated or not. Closes sessions
 * whose deadline passed (one sweep for all, not a timer per socket), the
 * sessions of revoked devices (found through the device links), and all of
 * them at shutdown.
 */
export class SessionRegistry implements RevocationListener {
  private readonly sessions = new Set<LiveSession>();

  /**
   * `isSignedIn` says whether a device's token works now: a revocation is
   * acted on as things stand when it arrives (a user disabled and enabled
   * again in between keeps the connections made since).
   */
  constructor(
    private readonly isSignedIn: (deviceId: number) => Promise<boolean>,
    private readonly links: Pick<DeviceLinks<LiveLink>, 'ofDevice' | 'ofUser'>,
  ) {}

  get size(): number {
    return this.sessions.size;
  }

  add(session: LiveSession): void {
    this.sessions.add(session);
  }

  remove(session: LiveSession): void {
    this.sessions.delete(session);
  }

  /**
   * Closes (4006) this node's connections of the devices whose tokens no longer
   * work: the devices named, or all of a user's. Each device's connections
   * close once the answer to whether its token still works comes.
   */
  revoked(revocations: readonly Revocation[]): void {
    for (const revocation of revocations) {
      const links = revocation.deviceId !== null ? this.links.ofDevice(revocation.deviceId) : this.links.ofUser(revocation.userId);
      const byDevice = new Map<number, LiveLink[]>();
      for (const link of links) byDevice.set(link.deviceId, [...(byDevice.get(link.deviceId) ?? []), link]);
      const message = revocationMessage(revocation.reason);
      for (const [deviceId, deviceLinks] of byDevice) {
        const closeUnlessSignedIn = (signedIn: boolean): void => {
          if (!signedIn) for (const link of deviceLinks) link.close('device_revoked', message);
        };
        // A failed check closes them: nothing brings this revocation again (the watcher's cursor is past it),
        // and a device whose token still works only reconnects and authenticates again.
        this.isSignedIn(deviceId).then(closeUnlessSignedIn, () => closeUnlessSignedIn(false));
      }
    }
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
