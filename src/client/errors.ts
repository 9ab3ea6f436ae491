import type { ErrorCode } from '../errors.js';

/**
 * Why a client call failed: a server error code (docs/protocol.md), or one of
 * the client's own: the connection dropped before the reply (`disconnected`),
 * no reply in time (`timeout`), the client was closed (`closed`), or the
 * server's reply made no sense (`bad_reply`).
 *
 * End-to-end encryption adds its own (docs/client.md): the server reports
 * other keys for this device than the ones it holds (`key_mismatch`), insists
 * on sealing to devices the client does not trust (`untrusted_devices`), says
 * an encrypted thread no longer requires encryption (`encryption_downgrade`);
 * this user's account key was replaced by a reset this device did not make
 * (`account_reset`: it dropped the old one and waits for approval again);
 * the store holds malformed secrets (`store_corrupt`).
 *
 * Attachments add two: the app cancelled an upload or download (`aborted`);
 * an encrypted attachment does not decrypt, is truncated, or its hash is not
 * the one its message states (`attachment_corrupt`).
 */
export type ClientErrorCode =
  | ErrorCode
  | 'disconnected' | 'timeout' | 'closed' | 'bad_reply' | 'network'
  | 'key_mismatch' | 'untrusted_devices' | 'encryption_downgrade' | 'account_reset' | 'store_corrupt'
  | 'aborted' | 'attachment_corrupt';

/** What an error frame carries besides its code (`devices_changed`: the devices to add and to drop). */
export interface ClientErrorDetails {
  readonly field?: string;
  readonly missing_devices?: readonly number[];
  readonly extra_devices?: readonly number[];
  /** rate_limited: the config key of the server's limit that refused. */
  readonly limit?: string;
}

export class ClientError extends Error {
  constructor(
    readonly code: ClientErrorCode,
    message: string,
    /** Whether the same call may succeed later. */
    readonly retryable: boolean,
    /** HTTP status, for errors from the HTTP API. */
    readonly status?: number,
    /** From `rate_limited`: when to try again. */
    readonly retryAfterMs?: number,
    readonly details?: ClientErrorDetails,
  ) {
    super(message);
    this.name = 'ClientError';
  }
}

/**
 * A request the server's frame rate limit refused (`websocket.frames_per_second`):
 * the server did not handle it, so it may be written again as it is, and a later
 * try may succeed.
 */
export function isFrameRateRefusal(error: unknown): error is ClientError {
  return error instanceof ClientError && error.code === 'rate_limited' && error.details?.limit === 'websocket.frames_per_second';
}
