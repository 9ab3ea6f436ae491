import type { StoredDevice, StoredAccount } from '../ports/accounts.js';
import type { AccountEvent } from '../ports/account-events.js';
import type { AccountEventRow } from '../repositories/account-events.js';
import type { DeviceRow } from '../repositories/devices.js';
import type { StoredInvite } from '../ports/admin.js';
import type { DuePush } from '../ports/push.js';
import type { InviteRow } from '../repositories/invites.js';
import type { DuePushRow } from '../repositories/push.js';
import type { UserRow } from '../repositories/users.js';

/**
 * SQLite rows (snake_case, 0|1 booleans) to the ports' types. Only the SQLite
 * implementations see rows: whatever crosses a port is the engine-neutral shape.
 */

export function toStoredAccount(row: UserRow): StoredAccount {
  return {
    id: row.id,
    username: row.username,
    displayName: row.display_name,
    passwordHash: row.password_hash,
    disabled: row.disabled === 1,
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

export function toAccountEvent(row: AccountEventRow): AccountEvent {
  return { id: row.id, userId: row.user_id, deviceId: row.device_id, reason: row.reason, createdAt: row.created_at };
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

export function toDuePush(row: DuePushRow): DuePush {
  return {
    id: row.id,
    deviceId: row.device_id,
    threadId: row.thread_id,
    messageId: row.message_id,
    createdAt: row.created_at,
    attempts: row.attempts,
    userId: row.user_id,
    pushPlatform: row.push_platform,
    pushToken: row.push_token,
    pushTopic: row.push_topic,
    deviceLive: row.device_live === 1,
    deviceRevoked: row.device_revoked === 1,
    seq: row.seq,
    kind: row.kind,
    body: row.body,
    attachments: row.attachments,
    senderName: row.sender_name,
    threadKind: row.thread_kind,
    threadTitle: row.thread_title,
    readSeq: row.read_seq,
    muted: row.muted === 1,
    left: row.left === 1,
    mentioned: row.mentioned === 1,
    deleted: row.deleted === 1,
    deliveredSeq: row.delivered_seq,
  };
}

/** `undefined` through, a row mapped. */
export function mapped<R, T>(row: R | undefined, map: (row: R) => T): T | undefined {
  return row === undefined ? undefined : map(row);
}
