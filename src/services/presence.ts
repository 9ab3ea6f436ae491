import type { Clock, Timer } from '../clock.js';
import type { PresenceStorage } from '../storage/ports/presence.js';
import { BatchedTimes } from './batched-times.js';
import type { PresenceStore } from './live/presence-store.js';
import type { Fanout, PresenceView } from './types.js';

export interface PresenceDeps {
  readonly storage: PresenceStorage;
  readonly clock: Clock;
  readonly fanout: Fanout;
  /** Who is connected, across nodes. */
  readonly connections: PresenceStore;
  /** How long a user stays shown online after their last connection closed. */
  readonly offlineGraceMs: number;
  /**
   * This node's id: its connection keys start with `<node>:` (see app.ts), and
   * so do its grace keys, so that two nodes' grace periods for one user do not
   * touch each other's key and removeAll(`<node>:`) takes them with the node.
   */
  readonly node: string;
}

/**
 * Who is online. A user is online while any of their devices is connected, on
 * any node (the PresenceStore counts connection keys); going offline waits out
 * a grace period on this node's Clock, during which a key of the grace period
 * stands in for the last connection, so a flapping network does not flap the
 * indicator. A user's presence is visible to the users they have added as
 * contacts and to members of the threads they share, and changes are sent
 * only to those of them who are online.
 */
export class PresenceService {
  private readonly goingOffline = new Map<number, Timer>();
  private readonly lastActive = new BatchedTimes();
  /** Store calls not yet settled: stop() waits for them, so a connection closed just before it is counted. */
  private readonly pending = new Set<Promise<unknown>>();
  /**
   * Per user, the tail of their presence operations on this node: each runs
   * after the one before has settled (two connections closing in one turn
   * would otherwise both decide on the same grace state). Dropped when the
   * user's last operation settles: an idle user costs nothing here.
   */
  private readonly queues = new Map<number, Promise<void>>();
  private stopped = false;

  constructor(private readonly deps: PresenceDeps) {}

  /** A connection (`key`, unique across nodes) of the user authenticated. Announces them online if they were not. */
  connected(userId: number, key: string): void {
    const { connections, clock } = this.deps;
    this.serially(userId, async () => {
      const pending = this.goingOffline.get(userId);
      if (pending) {
        // Back within the grace period: they never looked offline.
        clock.clearTimer(pending);
        this.goingOffline.delete(userId);
      }
      const count = await connections.add(userId, key);
      if (pending) await connections.remove(userId, this.graceKey(userId));
      else if (count === 1) await this.markActive(userId);
    });
  }

  /** The connection closed. The user's last connection anywhere starts the grace period. */
  disconnected(userId: number, key: string): void {
    const { connections, clock, offlineGraceMs } = this.deps;
    const grace = this.graceKey(userId);
    this.serially(userId, async () => {
      const inGrace = this.goingOffline.has(userId);
      // The grace key goes in before the connection's goes out: no node sees the user offline in between.
      if (!inGrace) await connections.add(userId, grace);
      const left = await connections.remove(userId, key);
      if (inGrace) return;
      if (left > 1) {
        await connections.remove(userId, grace);
        return;
      }
      if (this.stopped) {
        // Shutting down: gone now, with no grace period to wait out.
        this.storeLastActive(userId, clock.now());
        await connections.remove(userId, grace);
        return;
      }
      const timer = clock.setTimeout(() => {
        this.serially(userId, async () => {
          // A connection since (queued before this) took the grace period back.
          if (this.goingOffline.get(userId) !== timer) return;
          this.goingOffline.delete(userId);
          if ((await connections.remove(userId, grace)) === 0) await this.markActive(userId);
        });
      }, offlineGraceMs);
      this.goingOffline.set(userId, timer);
    });
  }

  /**
   * A dead node's connection keys were removed (see NodeWatch) and these users
   * were left with none: they went offline (no grace period: it ran out with
   * the node), their last-active time is stored and announced.
   */
  wentOffline(userIds: readonly number[]): void {
    for (const userId of userIds) this.serially(userId, () => this.markActive(userId));
  }

  /** The presence of those of `userIds` the viewer may see; the others are left out. */
  async statusFor(viewerId: number, userIds: readonly number[]): Promise<PresenceView[]> {
    const facts = await this.deps.storage.facts(viewerId, userIds);
    const shown = facts.filter((fact) => !fact.deleted && (fact.userId === viewerId || fact.sharesThread || fact.addedViewer));
    const online = await this.deps.connections.online(shown.map((fact) => fact.userId));
    return shown.map((fact) => ({ userId: fact.userId, online: online.has(fact.userId), lastActiveAt: this.lastActive.get(fact.userId, fact.lastActiveAt) }));
  }

  /**
   * Timers off; for shutdown, once the connections are closed. Users in their
   * grace period went offline now: their last-active time is stored (in the
   * group commit the shutdown drains) instead of staying at when they connected.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
    const now = this.deps.clock.now();
    for (const [userId, timer] of this.goingOffline) {
      this.deps.clock.clearTimer(timer);
      this.storeLastActive(userId, now);
      this.settle(this.deps.connections.remove(userId, this.graceKey(userId)));
    }
    this.goingOffline.clear();
  }

  private storeLastActive(userId: number, at: number): Promise<void> {
    return this.lastActive.set(userId, at, () => this.deps.storage.setLastActive(userId, at));
  }

  /**
   * Came online or went offline: the time is stored and announced to the
   * audience online, after the store committed: someone told of it who asks
   * another node (whose BatchedTimes do not know it) reads the same time.
   */
  private async markActive(userId: number): Promise<void> {
    const { storage, connections } = this.deps;
    const now = this.deps.clock.now();
    const stored = this.storeLastActive(userId, now);
    const { contacts, sharingThreads } = await storage.audience(userId);
    const audience = [...new Set([...contacts, ...sharingThreads])];
    const online = await connections.online([userId, ...audience]);
    const listening = audience.filter((id) => online.has(id));
    await stored;
    if (listening.length > 0) this.deps.fanout.presence({ userId, online: online.has(userId), lastActiveAt: now }, listening);
  }

  /** The presence store's key for the user's grace period here: a connection of its own, so every node shows them online meanwhile. */
  private graceKey(userId: number): string {
    return `${this.deps.node}:grace:${userId}`;
  }

  /** Runs `work` once the user's earlier operations here have settled (see `queues`). */
  private serially(userId: number, work: () => Promise<void>): void {
    const next = (this.queues.get(userId) ?? Promise.resolve()).then(work).catch(() => {});
    this.queues.set(userId, next);
    this.settle(
      next.finally(() => {
        if (this.queues.get(userId) === next) this.queues.delete(userId);
      }),
    );
  }

  /** Presence is best effort: a failed store call is not the connection's problem. */
  private settle(work: Promise<unknown>): void {
    const settled = work.catch(() => {}).finally(() => this.pending.delete(settled));
    this.pending.add(settled);
  }
}
