import type { PresenceFacts, PresenceStorage } from '../ports/presence.js';
import type { Store } from '../store.js';

/** PresenceStorage on SQLite: reads over one snapshot, the write in the group commit. */
export class SqlitePresenceStorage implements PresenceStorage {
  constructor(private readonly store: Pick<Store, 'users' | 'contacts' | 'threads' | 'batcher' | 'read'>) {}

  async facts(viewerId: number, userIds: readonly number[]): Promise<PresenceFacts[]> {
    const { users, contacts, threads } = this.store;
    return this.store.read(() => {
      const sharing = new Set(threads.usersSharingThreads(viewerId));
      return userIds.flatMap((userId) => {
        const user = users.findById(userId);
        if (!user) return [];
        return [{ userId, sharesThread: sharing.has(userId), addedViewer: contacts.has(userId, viewerId), deleted: user.deleted_at !== null, lastActiveAt: user.last_active_at }];
      });
    });
  }

  async audience(userId: number): Promise<{ contacts: number[]; sharingThreads: number[] }> {
    const { contacts, threads } = this.store;
    return this.store.read(() => ({ contacts: contacts.ids(userId), sharingThreads: threads.usersSharingThreads(userId) }));
  }

  setLastActive(userId: number, at: number): Promise<void> {
    return this.store.batcher.submit(() => this.store.users.setLastActive(userId, at));
  }
}
