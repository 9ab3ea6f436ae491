import type { Clock } from '../clock.js';
import { hashInviteCode, inviteCodePrefix, newInviteCode } from '../crypto/tokens.js';
import type { PasswordHasher } from '../crypto/passwords.js';
import { ChatError } from '../errors.js';
import type { RevocationChange, StoredAccount } from '../storage/ports/accounts.js';
import type { AdminStorage, PushCounts, StoredInvite, TableCounts } from '../storage/ports/admin.js';
import type { PushRegistration } from '../storage/ports/push.js';
import { checkPassword } from './account-rules.js';
import { type AccountService, toDevice } from './accounts.js';
import type { AuditLog, AuditReason } from './audit.js';
import { toRevocation } from './revocations.js';
import type { Device, RevocationListener, User } from './types.js';

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
      readonly storage: AdminStorage;
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

  async listUsers(): Promise<UserSummary[]> {
    return (await this.deps.storage.listUsers()).map(toSummary);
  }

  /** Sets a new password; with revokeDevices, every device must log in again. */
  async setPassword(username: string, password: string, options: { revokeDevices: boolean }): Promise<{ revokedDevices: number }> {
    const user = await this.findUser(username);
    checkPassword(password, this.deps.passwordMinLength);
    const hash = await this.deps.hasher.hash(password);
    const { storage, clock } = this.deps;
    const change = await storage.changePassword({ userId: user.id, passwordHash: hash, revoke: options.revokeDevices ? { keepDeviceId: null } : null, now: clock.now() });
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
  async setDisabled(username: string, disabled: boolean): Promise<UserSummary & { revokedDevices: number }> {
    const user = await this.findUser(username);
    const { storage, clock, audit } = this.deps;
    if (!disabled) {
      await storage.enableUser(user.id);
      audit.record('admin_user_enabled', { userId: user.id });
      return { ...toSummary(user), disabled, revokedDevices: 0 };
    }
    // Already disabled: no connection of the user can be open, and none is told again (no event).
    const change = await storage.disableUser({ userId: user.id, now: clock.now() });
    audit.record('admin_user_disabled', { userId: user.id });
    this.revoked(user.id, change, 'admin_user_disable');
    return { ...toSummary(user), disabled, revokedDevices: change.deviceIds.length };
  }

  /**
   * Deletes an account: its devices are revoked and its password erased. The
   * row stays (messages refer to it) and the username stays reserved, so that
   * nobody can later take the name and pass as the old owner.
   */
  async deleteUser(username: string): Promise<void> {
    const user = await this.findUser(username);
    const { storage, clock } = this.deps;
    const change = await storage.deleteUser({ userId: user.id, now: clock.now() });
    this.deps.audit.record('admin_user_deleted', { userId: user.id });
    this.revoked(user.id, change, 'admin_user_delete');
  }

  async listDevices(username: string, options: { includeRevoked: boolean }): Promise<Array<Device & { revokedAt: number | null }>> {
    const user = await this.findUser(username);
    return (await this.deps.storage.devicesOfUser(user.id, options)).map((row) => ({ ...toDevice(row), revokedAt: row.revokedAt }));
  }

  async revokeDevice(deviceId: number): Promise<void> {
    const { storage, clock } = this.deps;
    const device = await storage.deviceById(deviceId);
    if (!device) throw new ChatError('not_found', `no device ${deviceId}`);
    const already = (): ChatError => new ChatError('not_found', `device ${deviceId} is already revoked`);
    if (device.revokedAt !== null) throw already();
    const change = await storage.revokeDevices({ userId: device.userId, deviceIds: [deviceId], now: clock.now() });
    if (change.deviceIds.length === 0) throw already();
    this.deps.audit.record('admin_device_revoked', { userId: device.userId, deviceId });
    this.revoked(device.userId, change, 'admin_device_revoke');
  }

  /** The code is returned here and never again: the database keeps only its hash. */
  async createInvite(options: { maxUses: number; expiresInMs: number | null; note: string }): Promise<CreatedInvite> {
    const now = this.deps.clock.now();
    const code = newInviteCode();
    const prefix = inviteCodePrefix(code);
    const expiresAt = options.expiresInMs === null ? null : now + options.expiresInMs;
    const id = await this.deps.storage.createInvite({ codeHash: hashInviteCode(code), codePrefix: prefix, now, expiresAt, maxUses: options.maxUses, note: options.note });
    this.deps.audit.record('admin_invite_created', { inviteId: id });
    const row = { id, codePrefix: prefix, createdAt: now, expiresAt, maxUses: options.maxUses, uses: 0, revokedAt: null, note: options.note };
    return { ...this.toInvite(row), code };
  }

  async listInvites(): Promise<Invite[]> {
    return (await this.deps.storage.listInvites()).map((row) => this.toInvite(row));
  }

  /**
   * By the id `invite list` shows, by the code itself, or by the prefix the
   * list shows (`abcd`, or `abcd-…` as shown) when one invite not yet revoked
   * has it. Four digits may be either an id or a prefix (codes use 2-9): taken
   * as whichever exists, refused when both do.
   */
  async revokeInvite(idOrCode: string): Promise<Invite> {
    const { storage, clock } = this.deps;
    const text = idOrCode.trim();
    const shown = /^([a-z0-9]{4})(-(?:…|\.\.\.)?)?$/i.exec(text);
    const isId = shown?.[2] === undefined && /^\d{1,15}$/.test(text);
    const byId = isId ? await storage.invite({ id: Number(text) }) : undefined;
    const byPrefix = shown ? await this.inviteByPrefix(inviteCodePrefix(shown[1] as string)) : undefined;
    if (byId && byPrefix) {
      throw new ChatError('bad_request', `${text} is both the id of invite ${byId.id} and the prefix of invite ${byPrefix.id}: give ${text}-… for the prefix, or the whole code`);
    }
    const row = byId ?? byPrefix ?? (shown || isId ? undefined : await storage.invite({ codeHash: hashInviteCode(text) }));
    if (!row) throw new ChatError('not_found', `no invite ${idOrCode} (give the id from \`chatd invite list\`, the prefix it shows of one not revoked, or the whole code)`);
    if (!(await storage.revokeInvite(row.id, clock.now()))) throw new ChatError('not_found', `invite ${row.id} is already revoked`);
    this.deps.audit.record('admin_invite_revoked', { inviteId: row.id });
    return this.toInvite({ ...row, revokedAt: clock.now() });
  }

  /** The one invite not yet revoked whose code starts with `prefix`; refuses when several do. */
  private async inviteByPrefix(prefix: string): Promise<StoredInvite | undefined> {
    const matches = (await this.deps.storage.listInvites()).filter((invite) => invite.codePrefix === prefix && invite.revokedAt === null);
    if (matches.length > 1) throw new ChatError('bad_request', `${matches.length} invites start with ${prefix} (ids ${matches.map((invite) => invite.id).join(', ')}): give the id`);
    return matches[0];
  }

  counts(): Promise<TableCounts> {
    return this.deps.storage.counts(this.deps.clock.now());
  }

  pushCounts(): Promise<PushCounts> {
    return this.deps.storage.pushCounts();
  }

  /** Where a device's notifications go, and its user's badge (unread, muted threads left out), for a test notification. */
  async pushTarget(deviceId: number): Promise<{ registration: PushRegistration; badge: number }> {
    const { storage } = this.deps;
    const device = await storage.deviceById(deviceId);
    if (!device || device.revokedAt !== null) throw new ChatError('not_found', `no device ${deviceId} that is logged in (see chatd device list USER)`);
    const registration = await storage.pushRegistration(deviceId);
    if (!registration) throw new ChatError('not_found', `device ${deviceId} has no push token: the app registers one (push_register, or PUT /v1/me/push)`);
    return { registration, badge: await storage.badgeCount(device.userId) };
  }

  /** The provider said the device's token is dead: it is removed (unless replaced meanwhile). */
  dropPushToken(deviceId: number, token: string): Promise<boolean> {
    return this.deps.storage.dropPushToken(deviceId, token);
  }

  private async findUser(username: string): Promise<StoredAccount> {
    const user = await this.deps.storage.userByUsername(username);
    if (!user || user.deletedAt !== null) throw new ChatError('not_found', `no user "${username}"`);
    return user;
  }

  /** Audits devices that lost their tokens and closes their live connections (after the change committed). */
  private revoked(userId: number, change: RevocationChange, reason: AuditReason): void {
    if (change.deviceIds.length > 0) this.deps.audit.record('tokens_revoked', { userId, deviceIds: change.deviceIds, reason });
    if (change.events.length > 0) this.deps.revocations.revoked(change.events.map(toRevocation));
  }

  private toInvite(row: StoredInvite): Invite {
    const now = this.deps.clock.now();
    const usable = row.revokedAt === null && row.uses < row.maxUses && (row.expiresAt === null || row.expiresAt > now);
    return {
      id: row.id,
      prefix: row.codePrefix,
      createdAt: row.createdAt,
      expiresAt: row.expiresAt,
      maxUses: row.maxUses,
      uses: row.uses,
      revoked: row.revokedAt !== null,
      note: row.note,
      usable,
    };
  }
}

function toSummary(row: StoredAccount): UserSummary {
  return {
    id: row.id,
    username: row.username,
    displayName: row.displayName,
    disabled: row.disabled,
    createdAt: row.createdAt,
    lastActiveAt: row.lastActiveAt,
  };
}
