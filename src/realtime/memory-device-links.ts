import type { DeviceLinks, Link } from '../services/live/device-links.js';

/**
 * Device links of a single node: every link is local, so liveness is one map
 * (device → the key of its live link) beside the indexes by device and user.
 */
export class MemoryDeviceLinks<L extends Link = Link> implements DeviceLinks<L> {
  private readonly byKey = new Map<string, L>();
  private readonly byDevice = new Map<number, L | L[]>();
  private readonly byUser = new Map<number, L | L[]>();
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
    return listed(this.byDevice.get(deviceId));
  }

  ofUser(userId: number): readonly L[] {
    return listed(this.byUser.get(userId));
  }

  isLocal(key: string): boolean {
    return this.byKey.has(key);
  }
}

/*
 * The indexes hold one link as it is and make an array only for a second:
 * most devices and users have one connection, and every idle one pays for these maps.
 */

function add<L>(index: Map<number, L | L[]>, id: number, link: L): void {
  const held = index.get(id);
  if (held === undefined) index.set(id, link);
  else if (Array.isArray(held)) held.push(link);
  else index.set(id, [held, link]);
}

function remove<L>(index: Map<number, L | L[]>, id: number, link: L): void {
  const held = index.get(id);
  if (held === undefined) return;
  if (!Array.isArray(held)) {
    if (held === link) index.delete(id);
    return;
  }
  const at = held.indexOf(link);
  if (at >= 0) held.splice(at, 1);
  if (held.length === 0) index.delete(id);
  else if (held.length === 1) index.set(id, held[0] as L);
}

/** A copy: callers may attach and detach while they walk it. */
function listed<L>(held: L | L[] | undefined): readonly L[] {
  if (held === undefined) return [];
  return Array.isArray(held) ? [...held] : [held];
}
