/**
 * Errors of a networked storage engine. The message path answers both with
 * the wire's retryable `unavailable`: what did not commit was not acked, and
 * a resend with the same client_msg_id is stored once.
 */

/** The engine cannot be reached at start (or its schema is unusable): the server does not start. */
export class StorageStartError extends Error {
  readonly code = 'storage_start' as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageStartError';
  }
}

/** The engine went away while serving (connection refused, reset, timed out): retry later; the pool reconnects by itself. */
export class StorageUnavailableError extends Error {
  readonly code = 'storage_unavailable' as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageUnavailableError';
  }
}
