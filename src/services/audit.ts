import type { Logger } from '../log.js';

/**
 * The audit log: who signed in, failed to, was refused or changed what, as
 * one structured line per event. Every line says what happened (`audit`),
 * to whom (user and device ids) and from where (client address) — never a
 * password, token, invite code or message body: AuditFields has no field
 * that could carry one, so a caller cannot put one in by mistake.
 */
export interface AuditLog {
  record(event: AuditEvent, fields: AuditFields): void;
}

/** Each event and the level it is logged at (docs/operations.md, "Audit log", lists the same). */
export const AUDIT_LEVELS = {
  register: 'info',
  invite_used: 'info',
  login: 'info',
  login_failed: 'warn',
  /** A bearer token was presented (WebSocket auth frame or HTTP) and refused: unknown, revoked, or its user disabled. */
  token_refused: 'warn',
  /** A limit refused a request or slowed it down; `limit` names the config key. */
  rate_limited: 'warn',
  password_changed: 'info',
  password_change_failed: 'warn',
  /** A wrong password given to confirm a request (account_publish with reset from a device that is not approved). */
  password_confirm_failed: 'warn',
  /** Devices lost their tokens; `reason` says why, `device_ids` which. */
  tokens_revoked: 'info',
  /** A user replaced their account key (account_publish with reset): every device of theirs is pending again; `device_ids` which. */
  account_key_reset: 'warn',
  admin_user_added: 'info',
  admin_password_set: 'info',
  admin_user_disabled: 'info',
  admin_user_enabled: 'info',
  admin_user_deleted: 'info',
  admin_device_revoked: 'info',
  admin_invite_created: 'info',
  admin_invite_revoked: 'info',
  admin_database_migrated: 'info',
} as const satisfies Record<string, 'info' | 'warn'>;

export type AuditEvent = keyof typeof AUDIT_LEVELS;

export type AuditReason =
  | 'invalid_credentials'
  | 'account_disabled'
  | 'unauthorized'
  | 'logout'
  | 'device_revoke'
  | 'password_change'
  | 'admin_device_revoke'
  | 'admin_passwd'
  | 'admin_user_disable'
  | 'admin_user_delete'
  | 'refused'
  | 'slowed';

export interface AuditFields {
  readonly userId?: number | undefined;
  readonly deviceId?: number | undefined;
  readonly deviceIds?: readonly number[] | undefined;
  /** The client's address as the server sees it (http.trust_proxy decides whether X-Forwarded-For counts). */
  readonly address?: string | undefined;
  readonly inviteId?: number | undefined;
  readonly reason?: AuditReason | undefined;
  /** rate_limited: the config key of the limit that was hit, such as "rate_limit.login_per_address". */
  readonly limit?: string | undefined;
  readonly retryAfterSeconds?: number | undefined;
  readonly delayMs?: number | undefined;
  /** Refusals left out of the log in the minute before this line (ThrottledAuditLog). */
  readonly suppressed?: number | undefined;
  /** admin_database_migrated: the version the schema has now. */
  readonly schemaVersion?: number | undefined;
}

/** Writes each event as a pino line: `{"audit":"login_failed","user_id":3,"address":"…"}` at the event's level. */
export class PinoAuditLog implements AuditLog {
  constructor(private readonly log: Logger) {}

  record(event: AuditEvent, fields: AuditFields): void {
    const line: Record<string, unknown> = { audit: event };
    if (fields.userId !== undefined) line.user_id = fields.userId;
    if (fields.deviceId !== undefined) line.device_id = fields.deviceId;
    if (fields.deviceIds !== undefined) line.device_ids = fields.deviceIds;
    if (fields.address !== undefined) line.address = fields.address;
    if (fields.inviteId !== undefined) line.invite_id = fields.inviteId;
    if (fields.reason !== undefined) line.reason = fields.reason;
    if (fields.limit !== undefined) line.limit = fields.limit;
    if (fields.retryAfterSeconds !== undefined) line.retry_after_seconds = fields.retryAfterSeconds;
    if (fields.delayMs !== undefined) line.delay_ms = fields.delayMs;
    if (fields.schemaVersion !== undefined) line.schema_version = fields.schemaVersion;
    if (fields.suppressed !== undefined) line.suppressed = fields.suppressed;
    this.log[AUDIT_LEVELS[event]](line, `audit: ${event}`);
  }
}

/** Keeps the events in memory: for tests, and wherever nothing should be written. */
export class MemoryAuditLog implements AuditLog {
  readonly events: Array<{ event: AuditEvent } & AuditFields> = [];

  record(event: AuditEvent, fields: AuditFields): void {
    this.events.push({ event, ...fields });
  }
}
