import type { Clock } from '../clock.js';

export type RateDecision = { readonly allowed: true } | { readonly allowed: false; readonly retryAfterSeconds: number };

/**
 * Token buckets by key: a burst of `capacity`, refilled evenly over `windowMs`.
 * In memory (one process); bounded by `maxKeys`: when full, buckets that have
 * refilled completely are forgotten, as they carry no information.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; updatedAt: number }>();

  constructor(
    private readonly clock: Clock,
    private readonly capacity: number,
    private readonly windowMs: number,
    private readonly maxKeys = 100_000,
  ) {}

  /** Takes one token for `key`, or says how long until one is available. */
  take(key: string): RateDecision {
    const now = this.clock.now();
    const ratePerMs = this.capacity / this.windowMs;
    const bucket = this.buckets.get(key);
    const tokens = bucket ? Math.min(this.capacity, bucket.tokens + (now - bucket.updatedAt) * ratePerMs) : this.capacity;
    if (tokens < 1) return this.refusal(tokens, ratePerMs);
    if (!bucket && this.buckets.size >= this.maxKeys) this.forgetFullBuckets(now, ratePerMs);
    this.buckets.set(key, { tokens: tokens - 1, updatedAt: now });
    return { allowed: true };
  }

  /**
   * What `take` would answer, without taking: for limits that count only some
   * outcomes (wrong passwords), checked before the attempt and taken after it.
   */
  peek(key: string): RateDecision {
    const bucket = this.buckets.get(key);
    if (!bucket) return { allowed: true };
    const ratePerMs = this.capacity / this.windowMs;
    const tokens = Math.min(this.capacity, bucket.tokens + (this.clock.now() - bucket.updatedAt) * ratePerMs);
    return tokens < 1 ? this.refusal(tokens, ratePerMs) : { allowed: true };
  }

  /** Returns a token taken for `key` (the attempt it was taken for did not count after all). */
  giveBack(key: string): void {
    const bucket = this.buckets.get(key);
    if (bucket) bucket.tokens = Math.min(this.capacity, bucket.tokens + 1);
  }

  private refusal(tokens: number, ratePerMs: number): RateDecision {
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - tokens) / ratePerMs / 1000)) };
  }

  private forgetFullBuckets(now: number, ratePerMs: number): void {
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + (now - bucket.updatedAt) * ratePerMs >= this.capacity) this.buckets.delete(key);
    }
  }
}
