import { StartupError } from '../../errors.js';

/**
 * Redis could not be reached (or refused this node) when the node started:
 * the operator must fix `bus.url` or the server; `chatd serve` prints the
 * message and exits 1. The message names the URL without its password.
 */
export class BusStartError extends StartupError {
  readonly code = 'bus_start' as const;

  constructor(label: string, why: string) {
    super(`cannot reach Redis at ${label}: ${why}`);
    this.name = 'BusStartError';
  }
}

/**
 * Redis is unreachable while the node serves: a call that needs an answer from
 * it (presence, liveness) fails fast with this instead of waiting for the
 * reconnection. The session answers the wire's retryable `unavailable`.
 * Publications never throw it: they are dropped and counted (the bus may lose
 * them; clients fill gaps by seq).
 */
export class BusUnavailableError extends Error {
  readonly code = 'bus_unavailable' as const;

  constructor(message = 'the bus (Redis) is unavailable', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BusUnavailableError';
  }
}

/** Reply errors that mean "Redis cannot serve now" (it is loading its data, busy with a script, a replica…), not "this command is wrong". */
export const NOT_SERVING = /^(LOADING|BUSY|MASTERDOWN|TRYAGAIN|READONLY|CLUSTERDOWN)\b/;
