import type { DeviceLinks, Link } from '../services/live/device-links.js';

/**
 * Device links of a single node: every link is local, so liveness is one map
 * (device → the key of its live link) beside the indexes by device and user.
 */
export class MemoryDeviceLinks<L extends Link = Link> implements DeviceLinks<L> {
  private readonly byKey = new Map<string, L>();
  private readonly byDevice = new Map<number, L[]>();
  private readonly byUser = new Map<number, L[]>();
  private readonly live = new Map<number, string>();

  attach(link: L): void {
    if (this.byKey.has(link.key)) return;
    this.byKey.set(link.key, link);
    add(this.byDevice, link.deviceId, link);
    add(this.byUser, link.userId, link);
  }

  async detach(link: L): Promise<boolean> {
    if (this.byKey.get(link.key) === link) {
      this.byKey.delete(link.key);
      remove(this.byDevice, link.deviceId, link);
      remove(this.byUser, link.userId, link);
    }
    if (this.live.get(link.deviceId) !== link.key) return false;
    this.live.delete(link.deviceId);
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
    return [...(this.byDevice.get(deviceId) ?? [])];
  }

  ofUser(userId: number): readonly L[] {
    return [...(this.byUser.get(userId) ?? [])];
  }

  isLocal(key: string): boolean {
    return this.byKey.has(key);
  }
}

function add<L>(index: Map<number, L[]>, id: number, link: L): void {
  const list = index.get(id);
  if (list) list.push(link);
  else index.set(id, [link]);
}

function remove<L>(index: Map<number, L[]>, id: number, link: L): void {
  const list = index.get(id);
  if (!list) return;
  const at = list.indexOf(link);
  if (at >= 0) list.splice(at, 1);
  if (list.length === 0) index.delete(id);
}
