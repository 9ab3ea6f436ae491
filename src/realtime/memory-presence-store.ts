import type { PresenceStore } from '../services/live/presence-store.js';

/** The presence store of a single node: a set of connection keys per user, in memory. */
export class MemoryPresenceStore implements PresenceStore {
  private readonly keys = new Map<number, Set<string>>();

  async add(userId: number, key: string): Promise<number> {
    let set = this.keys.get(userId);
    if (!set) this.keys.set(userId, (set = new Set()));
    set.add(key);
    return set.size;
  }

  async remove(userId: number, key: string): Promise<number> {
    const set = this.keys.get(userId);
    if (!set) return 0;
    set.delete(key);
    if (set.size === 0) this.keys.delete(userId);
    return set.size;
  }

  async online(userIds: readonly number[]): Promise<Set<number>> {
    return new Set(userIds.filter((id) => this.keys.has(id)));
  }

  async removeAll(prefix: string): Promise<number[]> {
    const emptied: number[] = [];
    for (const [userId, set] of this.keys) {
      for (const key of set) if (key.startsWith(prefix)) set.delete(key);
      if (set.size === 0) {
        this.keys.delete(userId);
        emptied.push(userId);
      }
    }
    return emptied;
  }
}
