import type { Link } from '../services/live/device-links.js';

/**
 * This node's attached links, by key, device and user: the local half of
 * every DeviceLinks (liveness, the other half, is in memory or in Redis).
 * The indexes hold one link as it is and make an array only for a second:
 * most devices and users have one connection, and every idle one pays for these maps.
 */
export class LocalLinks<L extends Link> {
  private readonly byKey = new Map<string, L>();
  private readonly byDevice = new Map<number, L | L[]>();
  private readonly byUser = new Map<number, L | L[]>();

  /** Lists the link (once, however often it is attached). */
  attach(link: L): void {
    if (this.byKey.has(link.key)) return;
    this.byKey.set(link.key, link);
    add(this.byDevice, link.deviceId, link);
    add(this.byUser, link.userId, link);
  }

  /** No longer lists this very link (a different object under its key is left alone). */
  detach(link: L): void {
    if (this.byKey.get(link.key) !== link) return;
    this.byKey.delete(link.key);
    remove(this.byDevice, link.deviceId, link);
    remove(this.byUser, link.userId, link);
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
