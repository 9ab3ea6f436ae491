/** How long to wait before reconnecting. */
export interface BackoffOptions {
  /** The first delay's ceiling, in ms. */
  readonly initialDelayMs: number;
  /** No delay is longer than this, in ms. */
  readonly maxDelayMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialDelayMs: 500, maxDelayMs: 30_000 };

/**
 * Exponential backoff with full jitter: attempt n (from 0) waits a random time
 * in [ceiling/2, ceiling], ceiling = min(max, initial·2^n). The random half
 * spreads a crowd of clients that lost the server at the same moment; the fixed
 * half keeps a single client from hammering it.
 */
export function reconnectDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}
