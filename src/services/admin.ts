import type { Clock } from '../clock.js';
import { newInviteCode } from '../crypto/tokens.js';
import type { PasswordHasher } from '../crypto/passwords.js';
import { ChatError } from '../errors.js';
import type { InviteRow } from '../storage/repositories/invites.js';
import type { TableCounts } from '../storage/repositories/stats.js';
import type { UserRow } from '../storage/repositories/users.js';
import type { PushCounts, PushRegistration } from '../storage/repositories/push.js';
import type { Store } from '../storage/store.js';
import { unreadCount } from './message-store.js';
import { checkPassword } from './account-rules.js';
import { type AccountService, toDevice } from './accounts.js';
import { recordRevocations } from './revocations.js';
import type { Device, RevocationListener, User } from './types.js';

export interface UserSummary extends User {
  readonly disabled: boolean;
  readonly createdAt: number;
  readonly lastActiveAt: number | null;
}

export interface Invite {
  readonly code: string;
  readonly createdAt: number;
  readonly expiresAt: number | null;
  readonly maxUses: number;
  readonly uses: number;
  readonly revoked: boolean;
  readonly note: string;
  /** Can register an account right now. */
  readonly usable: boolean;
}

/**
 * What the `chatd` admin subcommands do. They act on names and ids directly,
 * with no principal: whoever can open the database file is the admin.
 */
export class AdminService {
  constructor(
    private readonly deps: {
      readonly store: Store;
      readonly accounts: AccountService;
      readonly hasher: PasswordHasher;
      readonly clock: Clock;
      readonly passwordMinLength: number;
      /**
       * Told of revocations after they commit, to close live connections (a
       * no-op in the CLI's process: the server reads them from the database).
       */
      readonly revocations: RevocationListener;
    },
  ) {}

  addUser(username: string, password: string, displayName?: string): Promise<User> {
    return this.deps.accounts.createUser({ username, password, displayName });
  }

  listUsers(): UserSummary[] {
    return this.deps.store.users.list().map(toSummary);
  }

  /** Sets a new password; with revokeDevices, every device must log in again. */
  async setPassword(username: string, password: string, options: { revokeDevices: boolean }): Promise<{ revokedDevices: number }> {
    const user = this.findUser(username);
    checkPassword(password, this.deps.passwordMinLength);
    const hash = await this.deps.hasher.hash(password);
    const { store, clock } = this.deps;
    const now = clock.now();
    const revoked = store.transaction(() => {
      store.users.setPasswordHash(user.id, hash);
      if (!options.revokeDevices) return [];
      const deviceIds = store.devices.revokeAllOfUser(user.id, 0, now);
      return recordRevocations(store, { userId: user.id, deviceIds, reason: 'password_changed', now });
    });
    if (revoked.length > 0) this.deps.revocations.revoked(revoked);
    return { revokedDevices: revoked.length };
  }

  /**
   * A disabled user cannot log in, and their existing tokens are refused (their
   * live connections close); nothing is deleted.
   */
  setDisabled(username: string, disabled: boolean): UserSummary {
    const user = this.findUser(username);
    const { store, clock } = this.deps;
    const revoked = store.transaction(() => {
      const changed = store.users.setDisabled(user.id, disabled);
      // Already disabled: no connection of the user can be open.
      if (!disabled || !changed || user.disabled === 1) return [];
      return recordRevocations(store, { userId: user.id, deviceIds: null, reason: 'user_disabled', now: clock.now() });
    });
    if (revoked.length > 0) this.deps.revocations.revoked(revoked);
    return { ...toSummary(user), disabled };
  }

  /**
   * Deletes an account: its devices are revoked and its password erased. The
   * row stays (messages refer to it) and the username stays reserved, so that
   * nobody can later take the name and pass as the old owner.
   */
  deleteUser(username: string): void {
    const user = this.findUser(username);
    const { store, clock } = this.deps;
    const now = clock.now();
    const revoked = store.transaction(() => {
      store.users.markDeleted(user.id, now);
      store.devices.revokeAllOfUser(user.id, 0, now);
      return recordRevocations(store, { userId: user.id, deviceIds: null, reason: 'user_deleted', now });
    });
    this.deps.revocations.revoked(revoked);
  }

  listDevices(username: string, options: { includeRevoked: boolean }): Array<Device & { revokedAt: number | null }> {
    const user = this.findUser(username);
    return this.deps.store.devices.listByUser(user.id, options).map((row) => ({ ...toDevice(row), revokedAt: row.revoked_at }));
  }

  revokeDevice(deviceId: number): void {
    const { store, clock } = this.deps;
    const device = store.devices.findById(deviceId);
    if (!device) throw new ChatError('not_found', `no device ${deviceId}`);
    const now = clock.now();
    const revoked = store.transaction(() => {
      if (device.revoked_at !== null || !store.devices.revoke(deviceId, now)) {
        throw new ChatError('not_found', `device ${deviceId} is already revoked`);
      }
      return recordRevocations(store, { userId: device.user_id, deviceIds: [deviceId], reason: 'device_revoked', now });
    });
    this.deps.revocations.revoked(revoked);
  }

  createInvite(options: { maxUses: number; expiresInMs: number | null; note: string }): Invite {
    const now = this.deps.clock.now();
    const code = newInviteCode();
    const expiresAt = options.expiresInMs === null ? null : now + options.expiresInMs;
    this.deps.store.invites.insert({ code, now, expiresAt, maxUses: options.maxUses, note: options.note });
    return this.toInvite({ code, created_at: now, expires_at: expiresAt, max_uses: options.maxUses, uses: 0, revoked_at: null, note: options.note });
  }

  listInvites(): Invite[] {
    return this.deps.store.invites.list().map((row) => this.toInvite(row));
  }

  revokeInvite(code: string): void {
    if (!this.deps.store.invites.find(code)) throw new ChatError('not_found', `no invite ${code}`);
    if (!this.deps.store.invites.revoke(code, this.deps.clock.now())) throw new ChatError('not_found', `invite ${code} is already revoked`);
  }

  counts(): TableCounts {
    return this.deps.store.stats.counts(this.deps.clock.now());
  }

  pushCounts(): PushCounts {
    return this.deps.store.push.counts();
  }

  /** Where a device's notifications go, and its user's badge (total unread), for a test notification. */
  pushTarget(deviceId: number): { registration: PushRegistration; badge: number } {
    const { store } = this.deps;
    const device = store.devices.findById(deviceId);
    if (!device || device.revoked_at !== null) throw new ChatError('not_found', `no device ${deviceId} that is logged in (see chatd device list USER)`);
    const registration = store.push.registration(deviceId);
    if (!registration) throw new ChatError('not_found', `device ${deviceId} has no push token: the app registers one (push_register, or PUT /v1/me/push)`);
    let badge = 0;
    for (const row of store.threads.forUser(device.user_id)) badge += unreadCount(row, row.last_seq);
    return { registration, badge };
  }

  /** The provider said the device's token is dead: it is removed (unless replaced meanwhile). */
  dropPushToken(deviceId: number, token: string): boolean {
    return this.deps.store.transaction(() => this.deps.store.push.dropToken(deviceId, token));
  }

  private findUser(username: string): UserRow {
    const user = this.deps.store.users.findByUsername(username);
    if (!user || user.deleted_at !== null) throw new ChatError('not_found', `no user "${username}"`);
    return user;
  }

  private toInvite(row: InviteRow): Invite {
    const now = this.deps.clock.now();
    const usable = row.revoked_at === null && row.uses < row.max_uses && (row.expires_at === null || row.expires_at > now);
    return {
      code: row.code,
      createdAt: row.created_at,
      expiresAt: row.expires_at,
      maxUses: row.max_uses,
      uses: row.uses,
      revoked: row.revoked_at !== null,
      note: row.note,
      usable,
    };
  }
}

function toSummary(row: UserRow): UserSummary {
  return {
    id: row.id,
    username: row.username,
    displayName: row.display_name,
    disabled: row.disabled === 1,
    createdAt: row.created_at,
    lastActiveAt: row.last_active_at,
  };
}
