import type { RevocationChange, StoredAccount } from '../ports/accounts.js';
import type { AdminStorage, NewInvite, PushCounts, StoredInvite, TableCounts } from '../ports/admin.js';
import type { PushRegistration } from '../ports/push.js';
import { SqliteAccountsStorage } from './accounts.js';
import { recordRevocationEvents } from './revocation-events.js';
import { mapped, toStoredAccount, toStoredInvite } from './rows.js';

/** AdminStorage on SQLite (the admin CLI's process, or tests): the account reads and units, plus the admin's own. */
export class SqliteAdminStorage extends SqliteAccountsStorage implements AdminStorage {
  async listUsers(): Promise<StoredAccount[]> {
    return this.store.users.list().map(toStoredAccount);
  }

  disableUser(input: { userId: number; now: number }): Promise<RevocationChange> {
    const { store } = this;
    return store.batcher.submit((): RevocationChange => {
      const wasEnabled = store.users.findById(input.userId)?.disabled === 0;
      store.users.setDisabled(input.userId, true);
      const deviceIds = store.devices.revokeAllOfUser(input.userId, null, input.now);
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
      const deviceIds = store.devices.revokeAllOfUser(input.userId, null, input.now);
      return { deviceIds, events: recordRevocationEvents(store, { userId: input.userId, deviceIds: null, reason: 'user_deleted', now: input.now }) };
    });
  }

  createInvite(invite: NewInvite): Promise<number> {
    return this.store.batcher.submit(() => this.store.invites.insert(invite));
  }

  async listInvites(): Promise<StoredInvite[]> {
    return this.store.invites.list().map(toStoredInvite);
  }

  async invite(ref: { id: number } | { codeHash: Buffer }): Promise<StoredInvite | undefined> {
    return mapped('id' in ref ? this.store.invites.findById(ref.id) : this.store.invites.findByHash(ref.codeHash), toStoredInvite);
  }

  revokeInvite(id: number, now: number): Promise<boolean> {
    return this.store.batcher.submit(() => this.store.invites.revoke(id, now));
  }

  async counts(now: number): Promise<TableCounts> {
    const row = this.store.stats.counts(now);
    return {
      users: row.users,
      disabledUsers: row.disabled_users,
      devices: row.devices,
      threads: row.threads,
      messages: row.messages,
      inboxEntries: row.inbox_entries,
      invitesOpen: row.invites_open,
    };
  }

  async pushCounts(): Promise<PushCounts> {
    const row = this.store.push.counts();
    return { sent: row.sent, failed: row.failed, droppedTokens: row.dropped_tokens, skipped: row.skipped, queued: row.queued };
  }

  async pushRegistration(deviceId: number): Promise<PushRegistration | undefined> {
    return this.store.push.registration(deviceId);
  }

  async badgeCount(userId: number): Promise<number> {
    return this.store.push.badge(userId);
  }

  dropPushToken(deviceId: number, token: string): Promise<boolean> {
    return this.store.batcher.submit(() => this.store.push.dropToken(deviceId, token));
  }
}
