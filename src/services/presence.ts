import type { Clock } from '../clock.js';
import type { Store } from '../storage/store.js';
import { BatchedTimes } from './batched-times.js';
import type { Fanout, PresenceView } from './types.js';

export interface PresenceDeps {
  readonly store: Store;
  readonly clock: Clock;
  readonly fanout: Fanout;
  /** How long a user stays shown online after their last connection closed. */
  readonly offlineGraceMs: number;
}

/**
 * Who is online, in this process's memory. A user is online while any of their
 * devices is connected; going offline waits out a grace period, so a flapping
 * network does not flap the indicator. A user's presence is visible to the
 * users they have added as contacts and to members of the threads they share,
 * and changes are sent only to those of them who are online.
 */
export class PresenceService {
  private readonly connections = new Map<number, number>();
  private readonly goingOffline = new Map<number, NodeJS.Timeout>();
  private readonly lastActive: BatchedTimes;

  constructor(private readonly deps: PresenceDeps) {
    this.lastActive = new BatchedTimes();
  }

  connected(userId: number): void {
    const count = (this.connections.get(userId) ?? 0) + 1;
    this.connections.set(userId, count);
    const pending = this.goingOffline.get(userId);
    if (pending) {
      // Back within the grace period: they never looked offline.
      clearTimeout(pending);
      this.goingOffline.delete(userId);
      return;
    }
    if (count === 1) this.markActive(userId);
  }

  disconnected(userId: number): void {
    const count = (this.connections.get(userId) ?? 1) - 1;
    if (count > 0) {
      this.connections.set(userId, count);
      return;
    }
    this.connections.delete(userId);
    const timer = setTimeout(() => {
      this.goingOffline.delete(userId);
      if (this.connections.has(userId)) return;
      this.markActive(userId);
    }, this.deps.offlineGraceMs);
    timer.unref();
    this.goingOffline.set(userId, timer);
  }

  /** Shown online: connected, or within the grace period after the last connection. */
  isOnline(userId: number): boolean {
    return this.connections.has(userId) || this.goingOffline.has(userId);
  }

  /** The presence of those of `userIds` the viewer may see; the others are left out. */
  statusFor(viewerId: number, userIds: readonly number[]): PresenceView[] {
    const visible = new Set(this.deps.store.threads.usersSharingThreads(viewerId));
    const { store } = this.deps;
    return userIds
      .filter((id) => id === viewerId || visible.has(id) || store.contacts.has(id, viewerId))
      .flatMap((id) => {
        const user = store.users.findById(id);
        return user && user.deleted_at === null ? [this.view(id, this.lastActive.get(id, user.last_active_at))] : [];
      });
  }

  /**
   * Timers off; for shutdown. Users in their grace period went offline now:
   * their last-active time is stored (in the group commit the shutdown drains)
   * instead of staying at when they connected.
   */
  stop(): void {
    const now = this.deps.clock.now();
    for (const [userId, timer] of this.goingOffline) {
      clearTimeout(timer);
      if (!this.connections.has(userId)) this.storeLastActive(userId, now);
    }
    this.goingOffline.clear();
  }

  private storeLastActive(userId: number, at: number): void {
    const { store } = this.deps;
    this.lastActive.set(userId, at, () => store.batcher.submit(() => store.users.setLastActive(userId, at)));
  }

  private view(userId: number, lastActiveAt: number | null): PresenceView {
    return { userId, online: this.isOnline(userId), lastActiveAt };
  }

  /** Came online or went offline: the time is stored and announced. */
  private markActive(userId: number): void {
    const { store } = this.deps;
    const now = this.deps.clock.now();
    this.storeLastActive(userId, now);
    const audience = new Set([...store.contacts.ids(userId), ...store.threads.usersSharingThreads(userId)]);
    const online = [...audience].filter((id) => this.connections.has(id));
    if (online.length > 0) this.deps.fanout.presence(this.view(userId, now), online);
  }
}
