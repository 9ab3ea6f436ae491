import type { ErrorCode } from '../errors.js';

/**
 * Why a client call failed: a server error code (docs/protocol.md), or one of
 * the client's own: the connection dropped before the reply (`disconnected`),
 * no reply in time (`timeout`), the client was closed (`closed`), or the
 * server's reply made no sense (`bad_reply`).
 */
export type ClientErrorCode = ErrorCode | 'disconnected' | 'timeout' | 'closed' | 'bad_reply' | 'network';

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
  ) {
    super(message);
    this.name = 'ClientError';
  }
}
