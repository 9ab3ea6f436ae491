import type { AccountsStorage, AddDeviceOutcome, CreateUserOutcome, DeviceWithUser, RevocationChange, StoredDevice, StoredAccount, UserQuery } from '../ports/accounts.js';
import type { TokenState } from '../ports/token.js';
import type { Store } from '../store.js';
import { recordRevocationEvents } from './revocation-events.js';
import { mapped, toStoredDevice, toStoredAccount } from './rows.js';

/** AccountsStorage on SQLite: reads are the prepared statements; each unit is one synchronous function run in the group commit. */
export class SqliteAccountsStorage implements AccountsStorage {
  constructor(protected readonly store: Store) {}

  async userById(id: number): Promise<StoredAccount | undefined> {
    return mapped(this.store.users.findById(id), toStoredAccount);
  }

  async userByUsername(username: string): Promise<StoredAccount | undefined> {
    return mapped(this.store.users.findByUsername(username), toStoredAccount);
  }

  async deviceByTokenHash(tokenHash: Buffer): Promise<DeviceWithUser | undefined> {
    const found = this.store.devices.findByTokenHash(tokenHash);
    if (!found) return undefined;
    const { user } = found;
    return {
      device: toStoredDevice(found.device),
      user: { id: user.id, username: user.username, displayName: user.display_name, disabled: user.disabled === 1, deletedAt: user.deleted_at },
    };
  }

  async tokenState(deviceId: number): Promise<TokenState | undefined> {
    return this.store.devices.tokenState(deviceId);
  }

  async deviceById(deviceId: number): Promise<StoredDevice | undefined> {
    return mapped(this.store.devices.findById(deviceId), toStoredDevice);
  }

  async devicesOfUser(userId: number, options: { includeRevoked: boolean }): Promise<StoredDevice[]> {
    return this.store.devices.listByUser(userId, options).map(toStoredDevice);
  }

  createUser(input: { username: string; displayName: string; passwordHash: string; inviteHash: Buffer | null; now: number }): Promise<CreateUserOutcome> {
    const { store } = this;
    return store.batcher.submit((): CreateUserOutcome => {
      const inviteId = input.inviteHash === null ? undefined : store.invites.consume(input.inviteHash, input.now);
      if (input.inviteHash !== null && inviteId === undefined) return { kind: 'refused', reason: 'invite_invalid' };
      const userId = store.users.insert({ username: input.username, displayName: input.displayName, passwordHash: input.passwordHash, now: input.now });
      if (userId === undefined) {
        // Throwing rolls the invite's use back (the batcher runs the write again alone in a savepoint).
        if (inviteId !== undefined) throw new UsernameTaken();
        return { kind: 'refused', reason: 'username_taken' };
      }
      return { kind: 'created', userId, inviteId };
    }).catch((error: unknown) => {
      if (error instanceof UsernameTaken) return { kind: 'refused', reason: 'username_taken' } as const;
      throw error;
    });
  }

  async setPasswordHash(userId: number, passwordHash: string): Promise<void> {
    await this.store.batcher.submit(() => this.store.users.setPasswordHash(userId, passwordHash));
  }

  addDevice(input: { userId: number; name: string; platform: string; tokenHash: Buffer; now: number }): Promise<AddDeviceOutcome> {
    const { store } = this;
    return store.batcher.submit((): AddDeviceOutcome => {
      const current = store.users.findById(input.userId);
      if (!current || current.disabled || current.deleted_at !== null) return { kind: 'refused', reason: 'account_disabled' };
      return { kind: 'added', deviceId: store.devices.insert(input) };
    });
  }

  changePassword(input: { userId: number; passwordHash: string; revoke: { keepDeviceId: number | null } | null; now: number }): Promise<RevocationChange> {
    const { store } = this;
    return store.batcher.submit((): RevocationChange => {
      store.users.setPasswordHash(input.userId, input.passwordHash);
      if (!input.revoke) return { deviceIds: [], events: [] };
      const deviceIds = store.devices.revokeAllOfUser(input.userId, input.revoke.keepDeviceId, input.now);
      return { deviceIds, events: recordRevocationEvents(store, { userId: input.userId, deviceIds, reason: 'password_changed', now: input.now }) };
    });
  }

  revokeDevices(input: { userId: number; deviceIds: readonly number[]; now: number }): Promise<RevocationChange> {
    const { store } = this;
    return store.batcher.submit((): RevocationChange => {
      const deviceIds = input.deviceIds.filter((id) => store.devices.revoke(id, input.now));
      return { deviceIds, events: recordRevocationEvents(store, { userId: input.userId, deviceIds, reason: 'device_revoked', now: input.now }) };
    });
  }

  setDisplayName(userId: number, displayName: string): Promise<boolean> {
    return this.store.batcher.submit(() => this.store.users.setDisplayName(userId, displayName));
  }

  async findUsers(query: UserQuery): Promise<StoredAccount[]> {
    const { users } = this.store;
    const rows = query.match === 'exact' ? [users.findExact(query.query, query.excludeUserId)].filter((row) => row !== undefined) : users.findByPrefix(query.query, query.excludeUserId, query.limit);
    return rows.slice(0, query.limit).map(toStoredAccount);
  }

  async touchDevice(deviceId: number, at: number): Promise<void> {
    await this.store.batcher.submit(() => this.store.devices.touch(deviceId, at));
  }
}

/** Inside createUser's unit only: turns into the `username_taken` outcome once the unit has rolled back. */
class UsernameTaken extends Error {}
