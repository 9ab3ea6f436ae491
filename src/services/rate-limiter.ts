import type { Clock } from '../clock.js';
import { MemoryRateLimitStore } from './limits/memory-rate-limit-store.js';
import type { BucketRule, RateDecision, RateLimitStore } from './limits/rate-limit-store.js';

/**
 * One limit: token buckets by key, a burst of `capacity` refilled evenly over
 * `windowMs`, kept in a RateLimitStore (the one token bucket of chatd). By
 * default a store of its own in this process, bounded by `maxKeys` (buckets
 * that have refilled completely are forgotten, as they carry no information).
 */
export class RateLimiter {
  private readonly rule: BucketRule;
  private readonly store: RateLimitStore;

  constructor(clock: Clock, capacity: number, windowMs: number, maxKeys = 100_000) {
    this.rule = { burst: capacity, refillMs: windowMs };
    this.store = new MemoryRateLimitStore(clock, maxKeys);
  }

  /** Takes one token for `key`, or says how long until one is available. */
  take(key: string): RateDecision {
    return this.store.take(key, this.rule);
  }

  /**
   * What `take` would answer, without taking: for limits that count only some
   * outcomes (wrong passwords), checked before the attempt and taken after it.
   */
  peek(key: string): RateDecision {
    return this.store.peek(key, this.rule);
  }

  /** Returns a token taken for `key` (the attempt it was taken for did not count after all). */
  giveBack(key: string): void {
    this.store.giveBack(key, this.rule);
  }
}
