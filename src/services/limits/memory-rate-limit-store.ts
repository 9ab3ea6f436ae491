import type { Clock } from '../../clock.js';
import type { BucketRule, RateDecision, RateLimitStore } from './rate-limit-store.js';
import { refusal, tokensAt } from './token-bucket.js';

interface Bucket {
  tokens: number;
  updatedAt: number;
  /** When the bucket is full again: from then on it carries no information and may be forgotten. */
  fullAt: number;
}

/**
 * The one-node RateLimitStore: three maps in this process. Buckets and pauses
 * are forgotten once they no longer matter (a bucket refilled, a pause over),
 * swept when a map has grown past `maxKeys` (and then only again after it has
 * doubled, so the sweep costs O(1) per call however many keys are live).
 * Counts are forgotten at zero.
 */
export class MemoryRateLimitStore implements RateLimitStore {
  private readonly buckets = new Map<string, Bucket>();
  private readonly pauses = new Map<string, number>();
  private readonly counts = new Map<string, number>();
  private sweepBucketsAt: number;
  private sweepPausesAt: number;

  constructor(
    private readonly clock: Clock,
    private readonly maxKeys = 100_000,
  ) {
    this.sweepBucketsAt = maxKeys;
    this.sweepPausesAt = maxKeys;
  }

  take(key: string, rule: BucketRule): RateDecision {
    const now = this.clock.now();
    const tokens = this.tokens(key, rule, now);
    if (tokens < 1) return refusal(tokens, rule);
    this.store(key, rule, tokens - 1, now);
    if (this.buckets.size >= this.sweepBucketsAt) {
      for (const [other, held] of this.buckets) if (held.fullAt <= now) this.buckets.delete(other);
      this.sweepBucketsAt = Math.max(this.maxKeys, 2 * this.buckets.size);
    }
    return { allowed: true };
  }

  peek(key: string, rule: BucketRule): RateDecision {
    const tokens = this.tokens(key, rule, this.clock.now());
    return tokens < 1 ? refusal(tokens, rule) : { allowed: true };
  }

  giveBack(key: string, rule: BucketRule): void {
    const now = this.clock.now();
    if (this.buckets.has(key)) this.store(key, rule, Math.min(rule.burst, this.tokens(key, rule, now) + 1), now);
  }

  /** The tokens in `key`'s bucket at `now` (a bucket never seen, or forgotten, is full). */
  private tokens(key: string, rule: BucketRule, now: number): number {
    const bucket = this.buckets.get(key);
    return bucket ? tokensAt(bucket.tokens, bucket.updatedAt, rule, now) : rule.burst;
  }

  private store(key: string, rule: BucketRule, tokens: number, now: number): void {
    this.buckets.set(key, { tokens, updatedAt: now, fullAt: now + (rule.burst - tokens) / (rule.burst / rule.refillMs) });
  }

  pause(key: string, ms: number): void {
    const now = this.clock.now();
    this.pauses.set(key, Math.max(this.pauses.get(key) ?? 0, now + ms));
    if (this.pauses.size >= this.sweepPausesAt) {
      for (const [other, until] of this.pauses) if (until <= now) this.pauses.delete(other);
      this.sweepPausesAt = Math.max(this.maxKeys, 2 * this.pauses.size);
    }
  }

  pausedFor(key: string): number {
    const until = this.pauses.get(key);
    if (until === undefined) return 0;
    const left = until - this.clock.now();
    if (left > 0) return left;
    this.pauses.delete(key);
    return 0;
  }

  acquire(key: string, max: number): boolean {
    const held = this.counts.get(key) ?? 0;
    if (held >= max) return false;
    this.counts.set(key, held + 1);
    return true;
  }

  release(key: string): void {
    const held = this.counts.get(key) ?? 0;
    if (held <= 1) this.counts.delete(key);
    else this.counts.set(key, held - 1);
  }

  /** Keys remembered, by kind: for tests of the bounds. */
  get size(): { readonly buckets: number; readonly pauses: number; readonly counts: number } {
    return { buckets: this.buckets.size, pauses: this.pauses.size, counts: this.counts.size };
  }
}

