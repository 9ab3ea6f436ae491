import type { PushOutcome } from './types.js';

/**
 * Dead-token answers that every token gives when the configuration is wrong
 * (APNs BadDeviceToken: wrong apns.environment; DeviceTokenNotForTopic: wrong
 * bundle id; FCM SENDER_ID_MISMATCH: a service account of another project),
 * as opposed to ones only a dead token gets (APNs 410, FCM UNREGISTERED).
 * Marked by identity rather than by a field so that PushOutcome keeps its shape.
 */
const suspects = new WeakSet<PushOutcome>();

/** A dead_token outcome that a configuration mistake would give every token too. */
export function suspectDeadToken(reason: string): PushOutcome {
  const outcome: PushOutcome = { kind: 'dead_token', reason };
  suspects.add(outcome);
  return outcome;
}

export function isSuspect(outcome: PushOutcome): boolean {
  return suspects.has(outcome);
}

/** What the dispatcher may do with a notification for a provider now. */
export type Admission =
  /** Send it. */
  | { readonly kind: 'send' }
  /** Send it as the probe of a paused provider: the only request to it until it answers. */
  | { readonly kind: 'probe' }
  /** A probe is on its way: leave the row claimed; the probe's end wakes the dispatcher. */
  | { readonly kind: 'busy' }
  /** Paused, or asked to wait (Retry-After): the row waits until `until`, its attempts untouched. */
  | { readonly kind: 'wait'; readonly until: number };

/** What the dispatcher does with a dead_token outcome. */
export type DeadTokenVerdict = 'drop' | 'hold' | 'trip';

/** A provider's pause as `chatd` shows it (log, metrics). */
export interface GateState {
  readonly paused: boolean;
  /** Until when its notifications wait (Unix ms); 0: they do not. */
  readonly until: number;
  /** Why it was paused (the provider's answer). */
  readonly reason: string | undefined;
}

/**
 * One provider's health as the dispatcher sees it, in memory (per node):
 * paused after an answer that refuses this server whatever the token
 * (`provider_error`), then probed with one notification at a time, with
 * backoff, until one is accepted; held until a Retry-After has passed; and a
 * circuit breaker for dead tokens. No token whose answer is suspect (see
 * suspectDeadToken) is removed before the provider has accepted a
 * notification since the start (or since it resumed): a wrong
 * apns.environment or bundle_id makes every token look dead, and the first
 * answers after a start would otherwise remove them. Dead-token answers
 * from `breakerRun` different devices in a row, with no notification accepted
 * between them, pause the provider instead.
 */
export class ProviderGate {
  private paused = false;
  private until = 0;
  private reason: string | undefined;
  private failedProbes = 0;
  private probing = false;
  private proven = false;
  private readonly deadRun = new Set<number>();

  constructor(
    private readonly breakerRun: number,
    /** The wait before the n-th probe (n ≥ 1): capped backoff. */
    private readonly probeDelay: (failedProbes: number) => number,
  ) {}

  state(): GateState {
    return { paused: this.paused, until: this.until, reason: this.reason };
  }

  admit(now: number): Admission {
    if (this.probing) return { kind: 'busy' };
    if (now < this.until) return { kind: 'wait', until: this.until };
    if (!this.paused) return { kind: 'send' };
    this.probing = true;
    return { kind: 'probe' };
  }

  /** The probe ended without an answer of the provider (the row was skipped, or chatd failed). */
  probeEnded(): void {
    this.probing = false;
  }

  /**
   * Records an answer; returns whether it paused the provider just now (the
   * dispatcher logs that once, at error level).
   */
  answered(outcome: PushOutcome, now: number): { readonly pausedNow: boolean; readonly resumed: boolean } {
    const wasProbe = this.probing;
    this.probing = false;
    switch (outcome.kind) {
      case 'sent': {
        const resumed = this.paused;
        this.paused = false;
        this.until = 0;
        this.reason = undefined;
        this.failedProbes = 0;
        this.proven = true;
        this.deadRun.clear();
        return { pausedNow: false, resumed };
      }
      case 'provider_error':
        return { pausedNow: this.pause(outcome.reason, now, wasProbe), resumed: false };
      case 'retry':
        if (outcome.retryAfterMs !== undefined) this.until = Math.max(this.until, now + outcome.retryAfterMs);
        // A probe that met a passing failure: the provider stays paused, probed again later.
        if (wasProbe && this.paused) this.until = Math.max(this.until, now + this.probeDelay(++this.failedProbes));
        return { pausedNow: false, resumed: false };
      default:
        return { pausedNow: false, resumed: false };
    }
  }

  /** A dead_token answer for `deviceId`: remove the token, keep it for later, or trip the breaker (then the provider is paused). */
  deadToken(deviceId: number, outcome: Extract<PushOutcome, { kind: 'dead_token' }>, now: number): { readonly verdict: DeadTokenVerdict; readonly pausedNow: boolean } {
    const { reason } = outcome;
    const wasProbe = this.probing;
    this.probing = false;
    this.deadRun.add(deviceId);
    if (this.paused || this.deadRun.size >= this.breakerRun) {
      const pausedNow = this.pause(`${this.deadRun.size} devices in a row answered as dead tokens, none accepted between them (last: ${reason})`, now, wasProbe);
      return { verdict: 'trip', pausedNow };
    }
    return { verdict: this.proven || !isSuspect(outcome) ? 'drop' : 'hold', pausedNow: false };
  }

  /**
   * Paused, or a probe failed: the next probe after the backoff (answers of
   * requests already on their way when the pause began change nothing).
   * Returns whether it was running before.
   */
  private pause(reason: string, now: number, wasProbe: boolean): boolean {
    const pausedNow = !this.paused;
    this.paused = true;
    this.proven = false;
    if (pausedNow) {
      this.reason = reason;
      this.failedProbes = 0;
    }
    if (pausedNow || wasProbe) this.until = Math.max(this.until, now + this.probeDelay(++this.failedProbes));
    return pausedNow;
  }
}
