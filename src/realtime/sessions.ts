import type { CloseReason } from '../errors.js';
import type { RevocationListener } from '../services/types.js';

/** What the registry needs of a live session. */
export interface LiveSession {
  /** The authenticated device, or undefined before authentication. */
  readonly deviceId: number | undefined;
  /** Unix ms after which the session is dead (no auth, or no heartbeat). */
  readonly deadline: number;
  close(reason: CloseReason, message: string): void;
  /** Closes the session because its deadline passed, with the close reason that fits its state. */
  expire(): void;
  /** Closes the session if too much is queued for it (slow consumer). */
  checkBackpressure(): void;
}

/**
 * Every live session of this process, by device. Closes sessions whose
 * deadline passed (one sweep for all, not a timer per socket), the sessions of
 * revoked devices, and all of them at shutdown.
 */
export class SessionRegistry implements RevocationListener {
  private readonly sessions = new Set<LiveSession>();
  private readonly byDevice = new Map<number, Set<LiveSession>>();

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

  /** Number of live authenticated sessions of a device. */
  countOf(deviceId: number): number {
    return this.byDevice.get(deviceId)?.size ?? 0;
  }

  devicesRevoked(deviceIds: readonly number[]): void {
    for (const id of deviceIds) {
      for (const session of [...(this.byDevice.get(id) ?? [])]) session.close('device_revoked', 'this device was logged out');
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
