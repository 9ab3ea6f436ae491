/**
 * The two closed catalogues of failure (style.md, practice 5).
 *
 * ErrorCode: a request failed, the caller gets a reply with the code, and the
 * connection (or HTTP client) carries on. Each code has one HTTP status and
 * says whether repeating the same request later can succeed.
 *
 * CloseCode: the server ends a WebSocket connection; the code tells the client
 * whether to reconnect. Both are documented once, in docs/protocol.md.
 */

export const ErrorCodes = {
  bad_request: { status: 400, retryable: false },
  invalid_frame: { status: 400, retryable: false },
  unknown_type: { status: 400, retryable: false },
  invalid_json: { status: 400, retryable: false },
  invalid_field: { status: 400, retryable: false },
  payload_too_large: { status: 413, retryable: false },
  unsupported_media_type: { status: 415, retryable: false },
  unauthorized: { status: 401, retryable: false },
  invalid_credentials: { status: 401, retryable: false },
  account_disabled: { status: 403, retryable: false },
  forbidden: { status: 403, retryable: false },
  link_expired: { status: 403, retryable: false },
  link_invalid: { status: 403, retryable: false },
  registration_closed: { status: 403, retryable: false },
  invite_invalid: { status: 403, retryable: false },
  not_found: { status: 404, retryable: false },
  method_not_allowed: { status: 405, retryable: false },
  range_not_satisfiable: { status: 416, retryable: false },
  username_taken: { status: 409, retryable: false },
  devices_changed: { status: 409, retryable: false },
  key_conflict: { status: 409, retryable: false },
  encryption_required: { status: 403, retryable: false },
  /** An edit after messages.edit_window_seconds from the message's sending. */
  edit_window_passed: { status: 403, retryable: false },
  /** An edit, reaction or reply-to of a message deleted for everyone. */
  message_deleted: { status: 409, retryable: false },
  /** A send named an attachment id that is not an upload the sender may attach (their own complete one, or one they can read). */
  attachment_not_found: { status: 404, retryable: false },
  attachment_mismatch: { status: 400, retryable: false },
  /** attachments.enabled is false: no uploads, no messages that carry them. */
  attachments_disabled: { status: 404, retryable: false },
  upgrade_required: { status: 426, retryable: false },
  /** A /v1/stream request names a session that does not exist, has ended, or belongs to another device. */
  stream_not_found: { status: 404, retryable: false },
  /** A stream resume asked for frames the session no longer keeps: open a new session (its inbox and sync bring what was missed). */
  resume_failed: { status: 409, retryable: false },
  // Uploads (docs/attachments.md, "Uploading").
  invalid_upload: { status: 400, retryable: false },
  encrypted_not_allowed: { status: 403, retryable: false },
  offset_mismatch: { status: 409, retryable: false },
  attachment_referenced: { status: 409, retryable: false },
  upload_expired: { status: 410, retryable: false },
  tus_version_unsupported: { status: 412, retryable: false },
  file_too_large: { status: 413, retryable: false },
  quota_exceeded: { status: 413, retryable: false },
  type_not_allowed: { status: 415, retryable: false },
  rate_limited: { status: 429, retryable: true },
  internal: { status: 500, retryable: true },
  unavailable: { status: 503, retryable: true },
} as const satisfies Record<string, { status: number; retryable: boolean }>;

export type ErrorCode = keyof typeof ErrorCodes;

/** A failure the caller is told about. Services throw these; transports map them. */
export class ChatError extends Error {
  readonly code: ErrorCode;
  /** Seconds after which a retry may succeed (rate limits). */
  readonly retryAfterSeconds: number | undefined;
  /** The request field at fault, when one is. */
  readonly field: string | undefined;
  /** More for programs, sent inside the error object (devices_changed: the devices to add and to drop). */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: { field?: string; retryAfterSeconds?: number; details?: Readonly<Record<string, unknown>> } = {},
  ) {
    super(message);
    this.name = 'ChatError';
    this.code = code;
    this.field = options.field;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.details = options.details;
  }

  get status(): number {
    return ErrorCodes[this.code].status;
  }
}

export function isChatError(error: unknown): error is ChatError {
  return error instanceof ChatError;
}

/**
 * What a caller is told when an engine is gone for now (PostgreSQL or Redis
 * lost while serving: StorageUnavailableError, BusUnavailableError, which say
 * so by their code): the retryable `unavailable`. Nothing that failed was
 * acknowledged, and a resend with the same client_msg_id is stored once.
 * Undefined for any other failure.
 */
export function unavailableError(error: unknown): ChatError | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (code === 'storage_unavailable') return new ChatError('unavailable', 'the database is unavailable for the moment; try again');
  if (code === 'bus_unavailable') return new ChatError('unavailable', 'the message bus between servers is unavailable for the moment; try again');
  return undefined;
}

/**
 * WebSocket close codes. 1000-1015 are RFC 6455's; 4000-4999 are ours.
 * `reconnect` tells a client whether connecting again can help.
 */
export const CloseCodes = {
  normal: { code: 1000, reconnect: false },
  going_away: { code: 1001, reconnect: true },
  protocol_error: { code: 1002, reconnect: false },
  policy_violation: { code: 1008, reconnect: false },
  message_too_big: { code: 1009, reconnect: true },
  internal_error: { code: 1011, reconnect: true },
  auth_timeout: { code: 4001, reconnect: true },
  auth_failed: { code: 4002, reconnect: false },
  heartbeat_timeout: { code: 4003, reconnect: true },
  rate_limited: { code: 4004, reconnect: true },
  slow_consumer: { code: 4005, reconnect: true },
  device_revoked: { code: 4006, reconnect: false },
} as const satisfies Record<string, { code: number; reconnect: boolean }>;

export type CloseReason = keyof typeof CloseCodes;

/** The server cannot start for a reason the operator must fix (port taken, transport missing). */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupError';
  }
}
