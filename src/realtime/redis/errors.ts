/**
 * Redis is out of reach while serving (disconnected, or the connection
 * dropped under a command): a presence or liveness call rejects with this,
 * and the caller answers as for any lost engine (`unavailable`, retryable).
 */
export class BusUnavailableError extends Error {
  readonly code = 'bus_unavailable' as const;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BusUnavailableError';
  }
}
