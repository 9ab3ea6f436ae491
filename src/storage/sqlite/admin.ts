import type { RevocationChange, UserRow } from '../ports/accounts.js';
import type { AdminStorage, InviteRow, NewInvite, PushCounts, PushRegistration, TableCounts } from '../ports/admin.js';
import { SqliteAccountsStorage } from './accounts.js';
import { unreadTotal } from './messaging.js';
import { recordRevocationEvents } from './revocation-events.js';

/** AdminStorage on SQLite (the admin CLI's process, or tests): the account reads and units, plus the admin's own. */
export class SqliteAdminStorage extends SqliteAccountsStorage implements AdminStorage {
  async listUsers(): Promise<UserRow[]> {
    return this.store.users.list();
  }

  disableUser(input: { userId: number; now: number }): Promise<RevocationChange> {
    const { store } = this;
    return store.batcher.submit((): RevocationChange => {
      const wasEnabled = store.users.findById(input.userId)?.disabled === 0;
      store.users.setDisabled(input.userId, true);
      const deviceIds = store.devices.revokeAllOfUser(input.userId, 0, input.now);
      const events = wasEnabled ? recordRevocationEvents(store, { userId: input.userId, deviceIds: null, reason: 'user_disabled', now: input.now }) : [];
      return { deviceIds, events };
    });
  }

  async enableUser(userId: number): Promise<void> {
    await this.store.batcher.submit(() => this.store.users.setDisabled(userId, false));
  }

  deleteUser(input: { userId: number; now: number }): Promise<RevocationChange> {
    const { store } = this;
    return store.batcher.submit((): RevocationChange => {
      store.users.markDeleted(input.userId, input.now);
      const deviceIds = store.devices.revokeAllOfUser(input.userId, 0, input.now);
      return { deviceIds, events: recordRevocationEvents(store, { userId: input.userId, deviceIds: null, reason: 'user_deleted', now: input.now }) };
    });
  }

  createInvite(invite: NewInvite): Promise<number> {
    return this.store.batcher.submit(() => this.store.invites.insert(invite));
  }

  async listInvites(): Promise<InviteRow[]> {
    return this.store.invites.list();
  }

  async invite(ref: { id: number } | { codeHash: Buffer }): Promise<InviteRow | undefined> {
    return 'id' in ref ? this.store.invites.findById(ref.id) : this.store.invites.findByHash(ref.codeHash);
  }

  revokeInvite(id: number, now: number): Promise<boolean> {
    return this.store.batcher.submit(() => this.store.invites.revoke(id, now));
  }

  async counts(now: number): Promise<TableCounts> {
    return this.store.stats.counts(now);
  }

  async pushCounts(): Promise<PushCounts> {
    return this.store.push.counts();
  }

  async pushRegistration(deviceId: number): Promise<PushRegistration | undefined> {
    return this.store.push.registration(deviceId);
  }

  async totalUnread(userId: number): Promise<number> {
    return unreadTotal(this.store, userId);
  }

  dropPushToken(deviceId: number, token: string): Promise<boolean> {
    return this.store.batcher.submit(() => this.store.push.dropToken(deviceId, token));
  }
}
