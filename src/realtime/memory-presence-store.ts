import type { PresenceStore } from '../services/live/presence-store.js';

/**
 * The presence store of a single node: the connection keys of each user, in
 * memory. Most users have one connection, so one key is held as it is and a
 * set is made only for a second (every idle connection pays for this map).
 */
export class MemoryPresenceStore implements PresenceStore {
  private readonly keys = new Map<number, string | Set<string>>();

  async add(userId: number, key: string): Promise<number> {
    const held = this.keys.get(userId);
    if (held === undefined || held === key) {
      this.keys.set(userId, key);
      return 1;
    }
    const set = typeof held === 'string' ? new Set([held]) : held;
    set.add(key);
    this.keys.set(userId, set);
    return set.size;
  }

  async remove(userId: number, key: string): Promise<number> {
    return this.removeWhere(userId, (held) => held === key);
  }

  async online(userIds: readonly number[]): Promise<Set<number>> {
    return new Set(userIds.filter((id) => this.keys.has(id)));
  }

  async removeAll(prefix: string): Promise<number[]> {
    const emptied: number[] = [];
    for (const userId of [...this.keys.keys()]) {
      if (this.removeWhere(userId, (key) => key.startsWith(prefix)) === 0) emptied.push(userId);
    }
    return emptied;
  }

  /** Drops the user's keys that match; returns how many are left (0: the user is forgotten). */
  private removeWhere(userId: number, matches: (key: string) => boolean): number {
    const held = this.keys.get(userId);
    if (held === undefined) return 0;
    if (typeof held === 'string') {
      if (!matches(held)) return 1;
      this.keys.delete(userId);
      return 0;
    }
    for (const key of held) if (matches(key)) held.delete(key);
    if (held.size === 0) this.keys.delete(userId);
    else if (held.size === 1) this.keys.set(userId, held.values().next().value as string);
    return held.size;
  }
}
