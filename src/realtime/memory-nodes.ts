import type { Clock } from '../clock.js';
import { type HeldLiveness, type NodeDirectory, nodeOfKey } from '../services/live/nodes.js';
import type { MemoryLiveness } from './memory-device-links.js';

/** What the nodes of one process share: their last heartbeats, and the device liveness (the MemoryDeviceLinks' map). */
export interface MemoryNodesState {
  readonly heartbeats: Map<string, number>;
  readonly liveness: MemoryLiveness;
}

export interface MemoryNodeDirectoryOptions {
  /** This node's id. */
  readonly node: string;
  readonly clock: Clock;
  /** A node whose last heartbeat is this old is dead. */
  readonly ttlMs: number;
  /** Shared with the other nodes of the test (a single node has its own). */
  readonly state?: MemoryNodesState;
}

/**
 * The node directory of one process: a single node is never dead to itself,
 * so in production this has nothing to find; tests share one state between
 * several to play a deployment on a fake clock.
 */
export class MemoryNodeDirectory implements NodeDirectory {
  private readonly state: MemoryNodesState;
  private registered = false;

  constructor(private readonly options: MemoryNodeDirectoryOptions) {
    this.state = options.state ?? { heartbeats: new Map(), liveness: new Map() };
  }

  async heartbeat(): Promise<boolean> {
    const { node, clock } = this.options;
    const known = this.state.heartbeats.has(node) || !this.registered;
    this.registered = true;
    this.state.heartbeats.set(node, clock.now());
    return known;
  }

  async deadNodes(): Promise<string[]> {
    const { node, clock, ttlMs } = this.options;
    const now = clock.now();
    return [...this.state.heartbeats].filter(([other, at]) => other !== node && now - at >= ttlMs).map(([other]) => other);
  }

  async liveDevicesOf(node: string): Promise<HeldLiveness[]> {
    return [...this.state.liveness].filter(([, key]) => nodeOfKey(key) === node).map(([deviceId, key]) => ({ deviceId, key }));
  }

  async forget(node: string): Promise<void> {
    this.state.heartbeats.delete(node);
  }
}
