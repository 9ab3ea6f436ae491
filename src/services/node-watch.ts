import type { Clock, Timer } from '../clock.js';
import type { DeliveryService } from './delivery.js';
import type { NodeDirectory } from './live/nodes.js';
import type { PresenceStore } from './live/presence-store.js';
import type { PresenceService } from './presence.js';

export interface NodeWatchDeps {
  readonly nodes: NodeDirectory;
  /** The presence store, for a dead node's connection keys. */
  readonly connections: Pick<PresenceStore, 'removeAll'>;
  readonly presence: Pick<PresenceService, 'wentOffline'>;
  readonly delivery: Pick<DeliveryService, 'releaseDeadLink'>;
  readonly clock: Clock;
  /** How often this node heartbeats (and looks for dead nodes): a fraction of the directory's TTL (a third: dead after 3 missed). */
  readonly heartbeatMs: number;
  /**
   * The directory had forgotten this node (declared dead while it was away,
   * or the bus lost its data): its presence and liveness may be gone. The
   * caller closes this node's connections; their clients reconnect and
   * rebuild both.
   */
  readonly forgotten: () => void;
  /** A heartbeat or sweep failed (the bus or the database away): the caller logs it; the next tick tries again. */
  readonly failed: (error: unknown) => void;
}

/**
 * Keeps this node in the directory and cleans up after nodes that died
 * without closing their connections: every heartbeat, each dead node's
 * connection keys leave the presence store (users left with none are shown
 * offline), each device live on one of its links is released and handed over
 * (its unacknowledged live messages go to its inbox, a notification is
 * queued), and the node is forgotten. Every step is safe to repeat and to run
 * on several survivors at once; a failed step leaves the node unforgotten, so
 * the next tick (here or on another node) does it again.
 */
export class NodeWatch {
  private timer: Timer | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly deps: NodeWatchDeps) {}

  /** Heartbeats now (resolves once the first tick settled), then every heartbeatMs. */
  async start(): Promise<void> {
    this.timer = this.deps.clock.setInterval(() => void this.tick(), this.deps.heartbeatMs);
    await this.tick();
  }

  /** No more ticks; resolves once the one running (if any) settled. */
  async stop(): Promise<void> {
    if (this.timer) this.deps.clock.clearTimer(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One heartbeat and sweep. One at a time: a tick due while one runs joins it. Never rejects (see `failed`). */
  tick(): Promise<void> {
    this.running ??= this.beat()
      .catch((error: unknown) => this.deps.failed(error))
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }

  private async beat(): Promise<void> {
    const { nodes } = this.deps;
    if (!(await nodes.heartbeat())) this.deps.forgotten();
    for (const node of await nodes.deadNodes()) await this.sweep(node);
  }

  private async sweep(node: string): Promise<void> {
    const { nodes, connections, presence, delivery } = this.deps;
    const emptied = await connections.removeAll(`${node}:`);
    if (emptied.length > 0) presence.wentOffline(emptied);
    for (const { deviceId, key } of await nodes.liveDevicesOf(node)) await delivery.releaseDeadLink(deviceId, key);
    await nodes.forget(node);
  }
}
