import { setTimeout as sleep } from 'node:timers/promises';
import type { Clock } from '../clock.js';
import { PasswordHasher } from '../crypto/passwords.js';
import { hashInviteCode, hashToken, newToken } from '../crypto/tokens.js';
import { ChatError } from '../errors.js';
import type { AccountsStorage, RevocationChange, StoredAccount, StoredDevice } from '../storage/ports/accounts.js';
import type { AuditLog } from './audit.js';
import { checkDeviceName, checkDisplayName, checkPassword, checkPlatform, checkUsername } from './account-rules.js';
import { BatchedTimes } from './batched-times.js';
import type { RateDecision } from './limits/rate-limit-store.js';
import type { RateLimiter } from './rate-limiter.js';
import { addressKey } from './limits/address-key.js';
import { isSignedIn, toRevocation } from './revocations.js';
import type { Device, Principal, RevocationListener, User } from './types.js';

export interface AccountSettings {
  readonly registration: 'open' | 'invite' | 'closed';
  readonly passwordMinLength: number;
  /** How long a login attempt waits once its username's wrong passwords pass `failuresPerUsername`. */
  readonly loginSlowdownMs: number;
}

/**
 * The limits on guessing passwords. None of them can lock the owner of an
 * account out: what one address does is held against that address only, and
 * the limit across all addresses slows attempts down but never refuses one.
 */
export interface LoginLimiters {
  /** Login and registration attempts per client address (rate_limit.login_per_address). */
  readonly perAddress: RateLimiter;
  /** Wrong passwords per username from one address (rate_limit.login_per_username): past it, that address is refused for that username. */
  readonly failuresPerUsernameAndAddress: RateLimiter;
  /** Wrong passwords per username from all addresses (rate_limit.login_slowdown_after): past it, attempts wait loginSlowdownMs. */
  readonly failuresPerUsername: RateLimiter;
}

export interface AccountServiceDeps {
  readonly storage: AccountsStorage;
  readonly hasher: PasswordHasher;
  readonly clock: Clock;
  readonly settings: AccountSettings;
  readonly limiters: LoginLimiters;
  readonly revocations: RevocationListener;
  readonly audit: AuditLog;
}

export interface Registration {
  readonly username: string;
  readonly password: string;
  readonly displayName?: string | undefined;
  readonly invite?: string | undefined;
}

export interface LoginRequest {
  readonly username: string;
  readonly password: string;
  readonly deviceName: string;
  readonly platform: string;
}

export interface LoginResult {
  readonly user: User;
  readonly device: Device;
  /** The bearer token; the server keeps only its hash, so this is the one time it is seen. */
  readonly token: string;
}

/**
 * Accounts and devices as a signed-in user sees them: register, log in and
 * out, change password, list and revoke devices, and token authentication.
 * Passwords are hashed before any transaction starts (hashing is slow and async).
 */
export class AccountService {
  private readonly lastSeen: BatchedTimes;

  constructor(private readonly deps: AccountServiceDeps) {
    this.lastSeen = new BatchedTimes();
  }

  /** Self-service registration, as the server's registration mode allows. */
  async register(request: Registration, address: string): Promise<User> {
    const mode = this.deps.settings.registration;
    if (mode === 'closed') {
      throw new ChatError('registration_closed', 'registration is closed on this server; ask its admin for an account');
    }
    if (mode === 'invite' && !request.invite) {
      throw new ChatError('invite_invalid', 'this server registers by invitation only: an invite code is required', { field: 'invite' });
    }
    this.limit(this.deps.limiters.perAddress, addressKey(address), 'rate_limit.login_per_address', { address });
    const created = await this.createUser(request, mode === 'invite' ? request.invite : undefined);
    if (created.inviteId !== undefined) this.deps.audit.record('invite_used', { userId: created.user.id, inviteId: created.inviteId, address });
    this.deps.audit.record('register', { userId: created.user.id, inviteId: created.inviteId, address });
    return created.user;
  }

  /**
   * Creates an account: by registration, and by `chatd user add` (which skips
   * the registration mode). With `invite`, the invite is used up in the same
   * transaction, so a taken username does not waste it.
   */
  async createUser(request: Omit<Registration, 'invite'>, invite?: string): Promise<{ user: User; inviteId: number | undefined }> {
    const { storage, settings, clock } = this.deps;
    checkUsername(request.username);
    const displayName = request.displayName?.trim() || request.username;
    checkDisplayName(displayName);
    checkPassword(request.password, settings.passwordMinLength);
    const passwordHash = await this.deps.hasher.hash(request.password);
    const outcome = await storage.createUser({
      username: request.username,
      displayName,
      passwordHash,
      inviteHash: invite === undefined ? null : hashInviteCode(invite),
      now: clock.now(),
    });
    if (outcome.kind === 'refused') {
      if (outcome.reason === 'invite_invalid') {
        throw new ChatError('invite_invalid', 'the invite code is unknown, used up, expired or revoked', { field: 'invite' });
      }
      throw new ChatError('username_taken', `the username "${request.username}" is taken`, { field: 'username' });
    }
    const { userId: id, inviteId } = outcome;
    return { user: { id, username: request.username, displayName }, inviteId };
  }

  /**
   * Checks the password and makes a new device with its token. Wrong
   * passwords count against the username from this address (refused past
   * rate_limit.login_per_username) and against the username from everywhere
   * (slowed past rate_limit.login_slowdown_after, never refused), so that
   * whoever guesses from one address cannot keep the owner out.
   */
  async login(request: LoginRequest, address: string): Promise<LoginResult> {
    const { storage, hasher, clock, limiters, audit } = this.deps;
    checkDeviceName(request.deviceName);
    checkPlatform(request.platform);
    this.limit(limiters.perAddress, addressKey(address), 'rate_limit.login_per_address', { address });
    const username = request.username.toLowerCase();
    const user = await storage.userByUsername(request.username);
    const known = user && user.passwordHash !== null && user.deletedAt === null ? user : undefined;
    // Keyed by the username as typed, known or not: a refusal must not tell which usernames exist.
    const fromHere = `${username}\n${addressKey(address)}`;
    // Taken before the password is checked and given back if it was right: checked first and taken after
    // the (slow) check, parallel guesses would all pass the check before any of them counted.
    this.refuseIfLimited(limiters.failuresPerUsernameAndAddress.take(fromHere), 'rate_limit.login_per_username', { userId: known?.id, address });
    if (!limiters.failuresPerUsername.peek(username).allowed) {
      const delayMs = this.deps.settings.loginSlowdownMs;
      audit.record('rate_limited', { limit: 'rate_limit.login_slowdown_after', reason: 'slowed', userId: known?.id, address, delayMs });
      await sleep(delayMs);
    }
    const valid = known ? await hasher.verify(known.passwordHash as string, request.password) : await hasher.verifyDecoy(request.password);
    if (!valid || !known) {
      limiters.failuresPerUsername.take(username);
      // An unknown username is not logged: it may be a password typed into the wrong field.
      audit.record('login_failed', { userId: known?.id, address, reason: 'invalid_credentials' });
      throw new ChatError('invalid_credentials', 'wrong username or password');
    }
    limiters.failuresPerUsernameAndAddress.giveBack(fromHere);
    if (known.disabled) {
      audit.record('login_failed', { userId: known.id, address, reason: 'account_disabled' });
      throw new ChatError('account_disabled', 'this account is disabled; ask the server admin');
    }
    if (hasher.needsRehash(known.passwordHash as string)) {
      await storage.setPasswordHash(known.id, await hasher.hash(request.password));
    }
    const token = newToken();
    const now = clock.now();
    // The user may have been disabled or deleted while the password was checked: no token for them.
    const added = await storage.addDevice({ userId: known.id, name: request.deviceName, platform: request.platform, tokenHash: hashToken(token), now });
    if (added.kind === 'refused') throw new ChatError('account_disabled', 'this account is disabled; ask the server admin');
    const { deviceId } = added;
    audit.record('login', { userId: known.id, deviceId, address });
    return {
      user: toUser(known),
      device: { id: deviceId, userId: known.id, name: request.deviceName, platform: request.platform, createdAt: now, lastSeenAt: now },
      token,
    };
  }

  /** The principal behind a bearer token. Revoked tokens, disabled and deleted users are refused (and audited, with `address`). */
  async authenticate(token: string, address?: string): Promise<Principal> {
    const found = token ? await this.deps.storage.deviceByTokenHash(hashToken(token)) : undefined;
    if (!found || found.user.deletedAt !== null) {
      this.deps.audit.record('token_refused', { address, reason: 'unauthorized' });
      throw new ChatError('unauthorized', 'the token is unknown or was revoked; log in again');
    }
    if (found.user.disabled) {
      this.deps.audit.record('token_refused', { userId: found.user.id, deviceId: found.device.id, address, reason: 'account_disabled' });
      throw new ChatError('account_disabled', 'this account is disabled; ask the server admin');
    }
    return { user: toUser(found.user), deviceId: found.device.id };
  }

  /** Whether the device's token still works (a revocation, disable or delete may have come from another process). */
  async isSignedIn(deviceId: number): Promise<boolean> {
    return isSignedIn(await this.deps.storage.tokenState(deviceId));
  }

  /** A live connection of this device authenticated: remember when it was last seen (in the next group commit). */
  deviceConnected(principal: Principal): void {
    const { storage, clock } = this.deps;
    const now = clock.now();
    this.lastSeen.set(principal.deviceId, now, () => storage.touchDevice(principal.deviceId, now));
  }

  async logout(principal: Principal, address?: string): Promise<void> {
    await this.revokeDevices(principal, [principal.deviceId], 'logout', address);
  }

  /**
   * Re-checks the user's password for a request a token alone may not make
   * (an account-key reset from a device that is not approved). Wrong
   * passwords count as in changePassword: against the device, under
   * rate_limit.login_per_username. Throws invalid_credentials (field `field`).
   */
  async confirmPassword(principal: Principal, password: string, field: string, address?: string): Promise<void> {
    await this.passwordOf(principal, password, field, 'password_confirm_failed', address);
  }

  private async passwordOf(principal: Principal, password: string, field: string, failure: 'password_change_failed' | 'password_confirm_failed', address?: string): Promise<StoredAccount> {
    const { storage, hasher, audit } = this.deps;
    // Only a device of the user gets here: its wrong guesses count against that device, not the username.
    const key = `device ${principal.deviceId}`;
    const who = { userId: principal.user.id, deviceId: principal.deviceId, address };
    this.refuseIfLimited(this.deps.limiters.failuresPerUsernameAndAddress.peek(key), 'rate_limit.login_per_username', who);
    const user = await storage.userById(principal.user.id);
    if (!user?.passwordHash || !(await hasher.verify(user.passwordHash, password))) {
      this.deps.limiters.failuresPerUsernameAndAddress.take(key);
      audit.record(failure, { ...who, reason: 'invalid_credentials' });
      throw new ChatError('invalid_credentials', 'the password is wrong', { field });
    }
    return user;
  }

  /** Checks the current password, sets the new one, and (by default) signs out every other device. */
  async changePassword(
    principal: Principal,
    request: { currentPassword: string; newPassword: string; revokeOtherDevices: boolean },
    address?: string,
  ): Promise<{ revokedDevices: number }> {
    const { storage, hasher, clock, audit } = this.deps;
    const who = { userId: principal.user.id, deviceId: principal.deviceId, address };
    const user = await this.passwordOf(principal, request.currentPassword, 'current_password', 'password_change_failed', address);
    checkPassword(request.newPassword, this.deps.settings.passwordMinLength, 'new_password');
    const hash = await hasher.hash(request.newPassword);
    const change = await storage.changePassword({
      userId: user.id,
      passwordHash: hash,
      revoke: request.revokeOtherDevices ? { keepDeviceId: principal.deviceId } : null,
      now: clock.now(),
    });
    const revoked = change.events.map(toRevocation);
    audit.record('password_changed', who);
    if (revoked.length > 0) {
      audit.record('tokens_revoked', { ...who, deviceIds: revoked.map((revocation) => revocation.deviceId as number), reason: 'password_change' });
      this.deps.revocations.revoked(revoked);
    }
    return { revokedDevices: revoked.length };
  }

  /**
   * Sets the user's own display name (trimmed, 1-64 characters). Others see
   * it wherever they next fetch the user (thread lists, members, searches);
   * nothing is pushed to their open pages.
   */
  async setDisplayName(principal: Principal, displayName: string): Promise<User> {
    const name = displayName.trim();
    checkDisplayName(name);
    if (!(await this.deps.storage.setDisplayName(principal.user.id, name))) throw new ChatError('unauthorized', 'the account is gone; log in again');
    return { ...principal.user, displayName: name };
  }

  async listDevices(principal: Principal): Promise<Device[]> {
    return (await this.deps.storage.devicesOfUser(principal.user.id, { includeRevoked: false }))
      .map((row) => ({ ...toDevice(row), lastSeenAt: this.lastSeen.get(row.id, row.lastSeenAt) }));
  }

  /** Revokes one of the principal's own devices (the current one included). */
  async revokeDevice(principal: Principal, deviceId: number, address?: string): Promise<void> {
    const device = await this.deps.storage.deviceById(deviceId);
    if (!device || device.userId !== principal.user.id || device.revokedAt !== null) {
      throw new ChatError('not_found', `you have no device ${deviceId}`);
    }
    await this.revokeDevices(principal, [deviceId], 'device_revoke', address);
  }

  private async revokeDevices(principal: Principal, deviceIds: readonly number[], reason: 'logout' | 'device_revoke', address: string | undefined): Promise<void> {
    const { storage, clock } = this.deps;
    const change: RevocationChange = await storage.revokeDevices({ userId: principal.user.id, deviceIds, now: clock.now() });
    const revoked = change.events.map(toRevocation);
    if (revoked.length === 0) return;
    this.deps.audit.record('tokens_revoked', { userId: principal.user.id, deviceId: principal.deviceId, deviceIds: revoked.map((revocation) => revocation.deviceId as number), address, reason });
    this.deps.revocations.revoked(revoked);
  }

  private limit(limiter: RateLimiter, key: string, limit: string, who: { userId?: number | undefined; address?: string | undefined }): void {
    this.refuseIfLimited(limiter.take(key), limit, who);
  }

  /** Audits and throws rate_limited when `decision` refuses; `limit` is the config key, for the log. */
  private refuseIfLimited(decision: RateDecision, limit: string, who: { userId?: number | undefined; deviceId?: number | undefined; address?: string | undefined }): void {
    if (decision.allowed) return;
    this.deps.audit.record('rate_limited', { ...who, limit, reason: 'refused', retryAfterSeconds: decision.retryAfterSeconds });
    throw new ChatError('rate_limited', `too many attempts; try again in ${decision.retryAfterSeconds} s`, {
      retryAfterSeconds: decision.retryAfterSeconds,
    });
  }
}

export function toUser(row: Pick<StoredAccount, 'id' | 'username' | 'displayName'>): User {
  return { id: row.id, username: row.username, displayName: row.displayName };
}

export function toDevice(row: StoredDevice): Device {
  return { id: row.id, userId: row.userId, name: row.name, platform: row.platform, createdAt: row.createdAt, lastSeenAt: row.lastSeenAt };
}
