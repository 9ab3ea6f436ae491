import type { Clock } from '../clock.js';
import { PasswordHasher } from '../crypto/passwords.js';
import { hashToken, newToken } from '../crypto/tokens.js';
import { ChatError } from '../errors.js';
import type { Store } from '../storage/store.js';
import type { DeviceRow } from '../storage/repositories/devices.js';
import type { UserRow } from '../storage/repositories/users.js';
import { checkDeviceName, checkDisplayName, checkPassword, checkPlatform, checkUsername } from './account-rules.js';
import { BatchedTimes } from './batched-times.js';
import type { RateLimiter } from './rate-limiter.js';
import { isSignedIn, recordRevocations } from './revocations.js';
import type { Device, Principal, RevocationListener, User } from './types.js';

export interface AccountSettings {
  readonly registration: 'open' | 'invite' | 'closed';
  readonly passwordMinLength: number;
}

export interface AccountServiceDeps {
  readonly store: Store;
  readonly hasher: PasswordHasher;
  readonly clock: Clock;
  readonly settings: AccountSettings;
  /** Login attempts per username. */
  readonly usernameLimiter: RateLimiter;
  /** Login and registration attempts per client address. */
  readonly addressLimiter: RateLimiter;
  readonly revocations: RevocationListener;
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
    this.lastSeen = new BatchedTimes(deps.store.batcher);
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
    this.limit(this.deps.addressLimiter, `address:${address}`);
    return this.createUser(request, mode === 'invite' ? request.invite : undefined);
  }

  /**
   * Creates an account: by registration, and by `chatd user add` (which skips
   * the registration mode). With `invite`, the invite is used up in the same
   * transaction, so a taken username does not waste it.
   */
  async createUser(request: Omit<Registration, 'invite'>, invite?: string): Promise<User> {
    const { store, settings, clock } = this.deps;
    checkUsername(request.username);
    const displayName = request.displayName?.trim() || request.username;
    checkDisplayName(displayName);
    checkPassword(request.password, settings.passwordMinLength);
    const passwordHash = await this.deps.hasher.hash(request.password);
    const now = clock.now();
    const id = store.transaction(() => {
      if (invite !== undefined && !store.invites.consume(invite, now)) {
        throw new ChatError('invite_invalid', 'the invite code is unknown, used up, expired or revoked', { field: 'invite' });
      }
      const userId = store.users.insert({ username: request.username, displayName, passwordHash, now });
      if (userId === undefined) throw new ChatError('username_taken', `the username "${request.username}" is taken`, { field: 'username' });
      return userId;
    });
    return { id, username: request.username, displayName };
  }

  async login(request: LoginRequest, address: string): Promise<LoginResult> {
    const { store, hasher, clock } = this.deps;
    checkDeviceName(request.deviceName);
    checkPlatform(request.platform);
    this.limit(this.deps.addressLimiter, `address:${address}`);
    this.limit(this.deps.usernameLimiter, `username:${request.username.toLowerCase()}`);
    const user = store.users.findByUsername(request.username);
    const valid =
      user && user.password_hash !== null && user.deleted_at === null
        ? await hasher.verify(user.password_hash, request.password)
        : await hasher.verifyDecoy(request.password);
    if (!valid || !user) throw new ChatError('invalid_credentials', 'wrong username or password');
    if (user.disabled) throw new ChatError('account_disabled', 'this account is disabled; ask the server admin');
    if (user.password_hash && hasher.needsRehash(user.password_hash)) {
      store.users.setPasswordHash(user.id, await hasher.hash(request.password));
    }
    const token = newToken();
    const now = clock.now();
    const deviceId = store.devices.insert({ userId: user.id, name: request.deviceName, platform: request.platform, tokenHash: hashToken(token), now });
    return {
      user: toUser(user),
      device: { id: deviceId, userId: user.id, name: request.deviceName, platform: request.platform, createdAt: now, lastSeenAt: now },
      token,
    };
  }

  /** The principal behind a bearer token. Revoked tokens, disabled and deleted users are refused. */
  authenticate(token: string): Principal {
    const found = token ? this.deps.store.devices.findByTokenHash(hashToken(token)) : undefined;
    if (!found || found.user.deleted_at !== null) throw new ChatError('unauthorized', 'the token is unknown or was revoked; log in again');
    if (found.user.disabled) throw new ChatError('account_disabled', 'this account is disabled; ask the server admin');
    return { user: toUser(found.user), deviceId: found.device.id };
  }

  /** Whether the device's token still works (a revocation, disable or delete may have come from another process). */
  isSignedIn(deviceId: number): boolean {
    return isSignedIn(this.deps.store.devices.tokenState(deviceId));
  }

  /** A live connection of this device authenticated: remember when it was last seen (in the next group commit). */
  deviceConnected(principal: Principal): void {
    const { store, clock } = this.deps;
    const now = clock.now();
    this.lastSeen.set(principal.deviceId, now, () => store.devices.touch(principal.deviceId, now));
  }

  logout(principal: Principal): void {
    this.revokeDevices(principal, [principal.deviceId]);
  }

  /** Checks the current password, sets the new one, and (by default) signs out every other device. */
  async changePassword(
    principal: Principal,
    request: { currentPassword: string; newPassword: string; revokeOtherDevices: boolean },
  ): Promise<{ revokedDevices: number }> {
    const { store, hasher, clock } = this.deps;
    this.limit(this.deps.usernameLimiter, `username:${principal.user.username.toLowerCase()}`);
    const user = store.users.findById(principal.user.id);
    if (!user?.password_hash || !(await hasher.verify(user.password_hash, request.currentPassword))) {
      throw new ChatError('invalid_credentials', 'the current password is wrong', { field: 'current_password' });
    }
    checkPassword(request.newPassword, this.deps.settings.passwordMinLength, 'new_password');
    const hash = await hasher.hash(request.newPassword);
    const now = clock.now();
    const revoked = store.transaction(() => {
      store.users.setPasswordHash(user.id, hash);
      if (!request.revokeOtherDevices) return [];
      const deviceIds = store.devices.revokeAllOfUser(user.id, principal.deviceId, now);
      return recordRevocations(store, { userId: user.id, deviceIds, reason: 'password_changed', now });
    });
    if (revoked.length > 0) this.deps.revocations.revoked(revoked);
    return { revokedDevices: revoked.length };
  }

  listDevices(principal: Principal): Device[] {
    return this.deps.store.devices
      .listByUser(principal.user.id, { includeRevoked: false })
      .map((row) => ({ ...toDevice(row), lastSeenAt: this.lastSeen.get(row.id, row.last_seen_at) }));
  }

  /** Revokes one of the principal's own devices (the current one included). */
  revokeDevice(principal: Principal, deviceId: number): void {
    const device = this.deps.store.devices.findById(deviceId);
    if (!device || device.user_id !== principal.user.id || device.revoked_at !== null) {
      throw new ChatError('not_found', `you have no device ${deviceId}`);
    }
    this.revokeDevices(principal, [deviceId]);
  }

  private revokeDevices(principal: Principal, deviceIds: readonly number[]): void {
    const { store, clock } = this.deps;
    const now = clock.now();
    const revoked = store.transaction(() => {
      const done = deviceIds.filter((id) => store.devices.revoke(id, now));
      return recordRevocations(store, { userId: principal.user.id, deviceIds: done, reason: 'device_revoked', now });
    });
    if (revoked.length > 0) this.deps.revocations.revoked(revoked);
  }

  private limit(limiter: RateLimiter, key: string): void {
    const decision = limiter.take(key);
    if (!decision.allowed) {
      throw new ChatError('rate_limited', `too many attempts; try again in ${decision.retryAfterSeconds} s`, {
        retryAfterSeconds: decision.retryAfterSeconds,
      });
    }
  }
}

export function toUser(row: Pick<UserRow, 'id' | 'username' | 'display_name'>): User {
  return { id: row.id, username: row.username, displayName: row.display_name };
}

export function toDevice(row: DeviceRow): Device {
  return { id: row.id, userId: row.user_id, name: row.name, platform: row.platform, createdAt: row.created_at, lastSeenAt: row.last_seen_at };
}
