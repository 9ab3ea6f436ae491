import type { Clock } from '../clock.js';
import { hashInviteCode, inviteCodePrefix, newInviteCode } from '../crypto/tokens.js';
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
import type { AuditLog, AuditReason } from './audit.js';
import { recordRevocations } from './revocations.js';
import type { Device, Revocation, RevocationListener, User } from './types.js';

export interface UserSummary extends User {
  readonly disabled: boolean;
  readonly createdAt: number;
  readonly lastActiveAt: number | null;
}

export interface Invite {
  readonly id: number;
  /** The code's first four letters; the code itself is kept only as a hash. */
  readonly prefix: string;
  readonly createdAt: number;
  readonly expiresAt: number | null;
  readonly maxUses: number;
  readonly uses: number;
  readonly revoked: boolean;
  readonly note: string;
  /** Can register an account right now. */
  readonly usable: boolean;
}

/** A new invite: the one time its code is known. */
export interface CreatedInvite extends Invite {
  readonly code: string;
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
      /** Every change made here is recorded: these are the admin's actions. */
      readonly audit: AuditLog;
    },
  ) {}

  async addUser(username: string, password: string, displayName?: string): Promise<User> {
    const { user } = await this.deps.accounts.createUser({ username, password, displayName });
    this.deps.audit.record('admin_user_added', { userId: user.id });
    return user;
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
    const change = store.transaction(() => {
      store.users.setPasswordHash(user.id, hash);
      if (!options.revokeDevices) return { deviceIds: [], revocations: [] };
      const deviceIds = store.devices.revokeAllOfUser(user.id, 0, now);
      return { deviceIds, revocations: recordRevocations(store, { userId: user.id, deviceIds, reason: 'password_changed', now }) };
    });
    this.deps.audit.record('admin_password_set', { userId: user.id });
    this.revoked(user.id, change, 'admin_passwd');
    return { revokedDevices: change.deviceIds.length };
  }

  /**
   * A disabled user cannot log in, and every device they have is logged out
   * for good (their live connections close): enabling them again does not
   * bring back a token issued before (one that may have been stolen, which may
   * be why they were disabled). Nothing else is deleted.
   */
  setDisabled(username: string, disabled: boolean): UserSummary & { revokedDevices: number } {
    const user = this.findUser(username);
    const { store, clock, audit } = this.deps;
    if (!disabled) {
      store.users.setDisabled(user.id, false);
      audit.record('admin_user_enabled', { userId: user.id });
      return { ...toSummary(user), disabled, revokedDevices: 0 };
    }
    const now = clock.now();
    const change = store.transaction(() => {
      store.users.setDisabled(user.id, true);
      const deviceIds = store.devices.revokeAllOfUser(user.id, 0, now);
      // Already disabled: no connection of the user can be open, and none is told again.
      const revocations = user.disabled === 0 ? recordRevocations(store, { userId: user.id, deviceIds: null, reason: 'user_disabled', now }) : [];
      return { deviceIds, revocations };
    });
    audit.record('admin_user_disabled', { userId: user.id });
    this.revoked(user.id, change, 'admin_user_disable');
    return { ...toSummary(user), disabled, revokedDevices: change.deviceIds.length };
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
    const change = store.transaction(() => {
      store.users.markDeleted(user.id, now);
      const deviceIds = store.devices.revokeAllOfUser(user.id, 0, now);
      return { deviceIds, revocations: recordRevocations(store, { userId: user.id, deviceIds: null, reason: 'user_deleted', now }) };
    });
    this.deps.audit.record('admin_user_deleted', { userId: user.id });
    this.revoked(user.id, change, 'admin_user_delete');
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
    const change = store.transaction(() => {
      if (device.revoked_at !== null || !store.devices.revoke(deviceId, now)) {
        throw new ChatError('not_found', `device ${deviceId} is already revoked`);
      }
      return { deviceIds: [deviceId], revocations: recordRevocations(store, { userId: device.user_id, deviceIds: [deviceId], reason: 'device_revoked', now }) };
    });
    this.deps.audit.record('admin_device_revoked', { userId: device.user_id, deviceId });
    this.revoked(device.user_id, change, 'admin_device_revoke');
  }

  /** The code is returned here and never again: the database keeps only its hash. */
  createInvite(options: { maxUses: number; expiresInMs: number | null; note: string }): CreatedInvite {
    const now = this.deps.clock.now();
    const code = newInviteCode();
    const prefix = inviteCodePrefix(code);
    const expiresAt = options.expiresInMs === null ? null : now + options.expiresInMs;
    const id = this.deps.store.invites.insert({ codeHash: hashInviteCode(code), codePrefix: prefix, now, expiresAt, maxUses: options.maxUses, note: options.note });
    this.deps.audit.record('admin_invite_created', { inviteId: id });
    const row = { id, code_prefix: prefix, created_at: now, expires_at: expiresAt, max_uses: options.maxUses, uses: 0, revoked_at: null, note: options.note };
    return { ...this.toInvite(row), code };
  }

  listInvites(): Invite[] {
    return this.deps.store.invites.list().map((row) => this.toInvite(row));
  }

  /** By the id `invite list` shows, or by the code itself. */
  revokeInvite(idOrCode: string): Invite {
    const { store, clock } = this.deps;
    const row = /^\d{1,15}$/.test(idOrCode) ? store.invites.findById(Number(idOrCode)) : store.invites.findByHash(hashInviteCode(idOrCode));
    if (!row) throw new ChatError('not_found', `no invite ${idOrCode} (give the id from \`chatd invite list\`, or the whole code)`);
    if (!store.invites.revoke(row.id, clock.now())) throw new ChatError('not_found', `invite ${row.id} is already revoked`);
    this.deps.audit.record('admin_invite_revoked', { inviteId: row.id });
    return this.toInvite({ ...row, revoked_at: clock.now() });
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

  /** Audits devices that lost their tokens and closes their live connections (after the change committed). */
  private revoked(userId: number, change: { readonly deviceIds: readonly number[]; readonly revocations: readonly Revocation[] }, reason: AuditReason): void {
    if (change.deviceIds.length > 0) this.deps.audit.record('tokens_revoked', { userId, deviceIds: change.deviceIds, reason });
    if (change.revocations.length > 0) this.deps.revocations.revoked(change.revocations);
  }

  private toInvite(row: InviteRow): Invite {
    const now = this.deps.clock.now();
    const usable = row.revoked_at === null && row.uses < row.max_uses && (row.expires_at === null || row.expires_at > now);
    return {
      id: row.id,
      prefix: row.code_prefix,
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
