import type { DeviceLinks, Link } from '../services/live/device-links.js';
import { LocalLinks } from './local-links.js';

/**
 * Device liveness in one process: device → the key of its live link. One
 * node owns its own; tests hand one map to several MemoryDeviceLinks (and to
 * a MemoryNodeDirectory) to play several nodes over one shared store.
 */
export type MemoryLiveness = Map<number, string>;

/**
 * Device links of a single node: every link is local, so liveness is one map
 * (device → the key of its live link) beside the indexes by device and user.
 * Each call on the map is atomic (one turn of the event loop), which is the
 * cross-node atomicity the interface asks for when several share the map.
 */
export class MemoryDeviceLinks<L extends Link = Link> implements DeviceLinks<L> {
  private readonly local = new LocalLinks<L>();

  constructor(private readonly live: MemoryLiveness = new Map()) {}

  attach(link: L): void {
    this.local.attach(link);
  }

  async detach(link: L): Promise<boolean> {
    this.local.detach(link);
    return this.release(link.deviceId, link.key);
  }

  async release(deviceId: number, key: string): Promise<boolean> {
    if (this.live.get(deviceId) !== key) return false;
    this.live.delete(deviceId);
    return true;
  }

  async endLiveness(deviceId: number): Promise<string | undefined> {
    const key = this.live.get(deviceId);
    this.live.delete(deviceId);
    return key;
  }

  async markLive(link: L): Promise<void> {
    this.live.set(link.deviceId, link.key);
  }

  forgetLiveness(deviceId: number, key: string): void {
    if (this.live.get(deviceId) === key) this.live.delete(deviceId);
  }

  ofDevice(deviceId: number): readonly L[] {
    return this.local.ofDevice(deviceId);
  }

  ofUser(userId: number): readonly L[] {
    return this.local.ofUser(userId);
  }

  isLocal(key: string): boolean {
    return this.local.isLocal(key);
  }
}
