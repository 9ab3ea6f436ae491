import type { StoredAccount, StoredDevice } from '../ports/accounts.js';
import type { StoredInvite } from '../ports/admin.js';

/**
 * PostgreSQL rows of users, devices and invites (snake_case; booleans and
 * bigints already JS values, see database.ts) to the ports' types. Nothing
 * above storage sees a row.
 */

export const USER_COLUMNS = 'id, username, display_name, password_hash, disabled, created_at, deleted_at, last_active_at';
export const DEVICE_COLUMNS = 'id, user_id, name, platform, created_at, last_seen_at, revoked_at';
export const INVITE_COLUMNS = 'id, code_prefix, created_at, expires_at, max_uses, uses, revoked_at, note';

export interface UserRow {
  readonly id: number;
  readonly username: string;
  readonly display_name: string;
  readonly password_hash: string | null;
  readonly disabled: boolean;
  readonly created_at: number;
  readonly deleted_at: number | null;
  readonly last_active_at: number | null;
  readonly [column: string]: unknown;
}

export interface DeviceRow {
  readonly id: number;
  readonly user_id: number;
  readonly name: string;
  readonly platform: string;
  readonly created_at: number;
  readonly last_seen_at: number | null;
  readonly revoked_at: number | null;
  readonly [column: string]: unknown;
}

export interface InviteRow {
  readonly id: number;
  readonly code_prefix: string;
  readonly created_at: number;
  readonly expires_at: number | null;
  readonly max_uses: number;
  readonly uses: number;
  readonly revoked_at: number | null;
  readonly note: string;
  readonly [column: string]: unknown;
}

export function toStoredAccount(row: UserRow): StoredAccount {
  return {
    id: row.id,
    username: row.username,
    displayName: row.display_name,
    passwordHash: row.password_hash,
    disabled: row.disabled,
    createdAt: row.created_at,
    deletedAt: row.deleted_at,
    lastActiveAt: row.last_active_at,
  };
}

export function toStoredDevice(row: DeviceRow): StoredDevice {
  return {
    id: row.id,
    userId: row.user_id,
    name: row.name,
    platform: row.platform,
    createdAt: row.created_at,
    lastSeenAt: row.last_seen_at,
    revokedAt: row.revoked_at,
  };
}

export function toStoredInvite(row: InviteRow): StoredInvite {
  return {
    id: row.id,
    codePrefix: row.code_prefix,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    maxUses: row.max_uses,
    uses: row.uses,
    revokedAt: row.revoked_at,
    note: row.note,
  };
}
