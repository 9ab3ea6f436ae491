export type RateDecision = { readonly allowed: true } | { readonly allowed: false; readonly retryAfterSeconds: number };

/** A token bucket: a burst of `burst` tokens, refilled evenly over `refillMs`. */
export interface BucketRule {
  readonly burst: number;
  readonly refillMs: number;
}

/**
 * Where the limits keep what they remember between connections: token
 * buckets, pauses and counts of live holders, by key. The in-memory store
 * serves one node; the several-nodes issue puts one behind Redis (a bucket is
 * a small Lua script, a pause a key with a TTL, a count an INCR/DECR with the
 * holders' node in view), so the rules in connection-limits.ts and
 * send-budget.ts stay as they are. Calls are synchronous because the session
 * decides on a frame in the same turn it reads it; a networked store will make
 * them return promises, and its callers (auth and send) already run async work.
 */
export interface RateLimitStore {
  /** Takes one token from `key`'s bucket, or says how long until one is available. */
  take(key: string, rule: BucketRule): RateDecision;
  /**
   * What `take` would answer, without taking: for limits that count only some
   * outcomes (wrong passwords), checked before the attempt and taken after it.
   */
  peek(key: string, rule: BucketRule): RateDecision;
  /** Returns a token taken from `key`'s bucket (the attempt it was taken for did not count after all); never past `rule.burst`. */
  giveBack(key: string, rule: BucketRule): void;
  /** Refuses `key` for `ms` from now (a longer pause already running is kept). */
  pause(key: string, ms: number): void;
  /** Milliseconds left of `key`'s pause; 0 when it is not paused. */
  pausedFor(key: string): number;
  /** Counts one more holder of `key` unless it has `max` already; true when counted. */
  acquire(key: string, max: number): boolean;
  /** One holder of `key` is gone (an acquire() that returned true). */
  release(key: string): void;
}
