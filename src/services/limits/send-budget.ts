import { ChatError } from '../../errors.js';
import type { RateLimitStore } from './rate-limit-store.js';

/**
 * What one user may store per unit of time: every `send` of every one of the
 * user's connections and devices draws from one bucket, a burst of two
 * seconds' worth refilled at `perSecond`. Per-connection frame limits alone
 * let a user multiply their rate by connecting again or from more devices.
 */
export class SendBudget {
  constructor(
    private readonly store: RateLimitStore,
    private readonly perSecond: number,
  ) {}

  /** Takes one send from the user's budget, or throws `rate_limited` with the seconds to wait. */
  spend(userId: number): void {
    const decision = this.store.take(`send:user:${userId}`, { burst: 2 * this.perSecond, refillMs: 2_000 });
    if (!decision.allowed) {
      throw new ChatError('rate_limited', `more than ${this.perSecond} messages a second from this user; try again in ${decision.retryAfterSeconds} s`, {
        retryAfterSeconds: decision.retryAfterSeconds,
        details: { limit: 'limits.user_sends_per_second' },
      });
    }
  }
}
