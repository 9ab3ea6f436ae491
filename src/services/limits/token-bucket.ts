import type { Clock } from '../../clock.js';
import type { BucketRule, RateDecision } from './rate-limit-store.js';

/**
 * The token bucket's arithmetic, once: a burst of `rule.burst` tokens,
 * refilled evenly over `rule.refillMs`. The keyed buckets of a
 * RateLimitStore and a connection's own FrameBucket both use it.
 */

/** The tokens a bucket that held `tokens` at `updatedAt` holds at `now`. */
export function tokensAt(tokens: number, updatedAt: number, rule: BucketRule, now: number): number {
  return Math.min(rule.burst, tokens + (now - updatedAt) * (rule.burst / rule.refillMs));
}

/** The refusal with the whole seconds until `tokens` has grown to one. */
export function refusal(tokens: number, rule: BucketRule): RateDecision {
  return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - tokens) / (rule.burst / rule.refillMs) / 1000)) };
}

const ALLOWED: RateDecision = { allowed: true };

/**
 * One bucket with no key, held by its owner: a connection's frame budget.
 * Two numbers, where a keyed store would cost every idle connection a map of
 * its own (tens of thousands of connections per node).
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly clock: Clock,
    private readonly rule: BucketRule,
  ) {
    this.tokens = rule.burst;
    this.updatedAt = clock.now();
  }

  /** Takes one token, or says how long until one is available. */
  take(): RateDecision {
    const now = this.clock.now();
    const tokens = tokensAt(this.tokens, this.updatedAt, this.rule, now);
    if (tokens < 1) return refusal(tokens, this.rule);
    this.tokens = tokens - 1;
    this.updatedAt = now;
    return ALLOWED;
  }
}
