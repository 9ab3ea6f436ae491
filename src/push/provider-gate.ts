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
export function suspectDeadToken(reason: string): Extract<PushOutcome, { kind: 'dead_token' }> {
  const outcome = { kind: 'dead_token', reason } as const;
  suspects.add(outcome);
  return outcome;
}

export function isSuspect(outcome: PushOutcome): boolean {
  return suspects.has(outcome);
}

/** How much later than the next probe a device whose probe failed may be probed, per failed probe, and at most how many steps. */
const HELD_STEP_MS = 1_000;
const MAX_HELD_STEPS = 60;

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

/**
 * The longest a Retry-After holds anything: a push service (or a Web Push
 * endpoint a user chose) asking for an hour does not get it; the wait is
 * capped, and retries go on with backoff after it.
 */
export const MAX_RETRY_AFTER_MS = 5 * 60_000;

/**
 * Whom a Retry-After holds: the whole provider (APNs, FCM: one endpoint that
 * every notification shares, so it speaks for all of them), or only the
 * subscription that got it (Web Push: each endpoint is a URL a user
 * registered, whose answers speak for that subscription alone).
 */
export type RetryAfterScope = 'provider' | 'subscription';

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
 * answers after a start would otherwise remove them. Suspect answers from
 * `breakerRun` different USERS in a row, with no notification accepted
 * between them, pause the provider instead: users, not devices, so that one
 * user's many logins (or subscriptions) cannot pause push for everyone. A
 * definite dead-token answer (APNs 410, FCM UNREGISTERED, Web Push 404/410:
 * a configuration mistake never gives it) removes the token at once and
 * never counts. The devices that tripped the breaker are probed last.
 *
 * Whether an answer is the probe's is the dispatcher's to say (it admitted
 * that row as the probe): an answer to a request sent before the pause may
 * arrive while the probe is out, and must neither end the probe nor count as
 * its failure. A device whose probe failed waits behind the devices not yet
 * probed in this pause (see notBefore), so that one bad subscription or token
 * cannot be the probe every time while others would be accepted.
 */
export class ProviderGate {
  private paused = false;
  private until = 0;
  private reason: string | undefined;
  private failedProbes = 0;
  private probing = false;
  private proven = false;
  /** Users whose devices answered suspect dead tokens since the last accepted notification. */
  private readonly deadRunUsers = new Set<number>();
  /** Their devices: probed after the others once the breaker trips. */
  private readonly deadRunDevices = new Set<number>();
  /** Devices whose probe failed in this pause, and how many times: they wait that many steps (HELD_STEP_MS) past the next probe. */
  private readonly failedDevices = new Map<number, number>();
  /** Subscriptions (devices) asked to wait by their own Retry-After (scope 'subscription'): until when. */
  private readonly deviceWaits = new Map<number, number>();

  constructor(
    private readonly breakerRun: number,
    /** The wait before the n-th probe (n ≥ 1): capped backoff. */
    private readonly probeDelay: (failedProbes: number) => number,
    private readonly retryAfterScope: RetryAfterScope = 'provider',
  ) {}

  state(): GateState {
    return { paused: this.paused, until: this.until, reason: this.reason };
  }

  admit(now: number, deviceId: number): Admission {
    if (this.probing) return { kind: 'busy' };
    const until = this.notBefore(deviceId);
    if (now < until) return { kind: 'wait', until };
    if (!this.paused) return { kind: 'send' };
    this.probing = true;
    return { kind: 'probe' };
  }

  /**
   * When a notification for `deviceId` may go next: the pause's (or
   * Retry-After's) end; for a device whose probe failed in this pause, a
   * second later per failed probe (at most a minute). At the probe's time
   * its rows are not due yet, whatever their lane, so the probe goes to a
   * device not yet probed when there is one; among those that failed, the
   * one that failed least goes first. The probes go round the devices rather
   * than asking the same one each time.
   */
  notBefore(deviceId: number): number {
    const failed = this.paused ? (this.failedDevices.get(deviceId) ?? 0) : 0;
    const provider = this.until + Math.min(failed, MAX_HELD_STEPS) * HELD_STEP_MS;
    return Math.max(provider, this.deviceWaits.get(deviceId) ?? 0);
  }

  /** The probe ended without an answer of the provider (the row was skipped, or chatd failed). */
  probeEnded(): void {
    this.probing = false;
  }

  /**
   * Records an answer for `deviceId` (`probe`: the row was admitted as the
   * probe); returns whether it paused the provider just now (the dispatcher
   * logs that once, at error level).
   */
  answered(outcome: PushOutcome, now: number, deviceId: number, probe: boolean): { readonly pausedNow: boolean; readonly resumed: boolean } {
    if (probe) this.probing = false;
    switch (outcome.kind) {
      case 'sent': {
        const resumed = this.paused;
        this.paused = false;
        this.until = 0;
        this.reason = undefined;
        this.failedProbes = 0;
        this.proven = true;
        this.deadRunUsers.clear();
        this.deadRunDevices.clear();
        this.failedDevices.clear();
        this.deviceWaits.delete(deviceId);
        return { pausedNow: false, resumed };
      }
      case 'provider_error':
        return { pausedNow: this.pause(outcome.reason, now, probe ? deviceId : undefined), resumed: false };
      case 'retry':
        if (outcome.retryAfterMs !== undefined) this.waitFor(deviceId, now + Math.min(outcome.retryAfterMs, MAX_RETRY_AFTER_MS), now);
        // A probe that met a passing failure: the provider stays paused, probed again later.
        if (probe && this.paused) this.probeFailed(deviceId, now);
        return { pausedNow: false, resumed: false };
      default:
        return { pausedNow: false, resumed: false };
    }
  }

  /**
   * A dead_token answer for `deviceId` (of `userId`): remove the token, keep
   * it for later, or trip the breaker (then the provider is paused). A
   * definite one is removed at once, paused or not, and counts for nothing: a
   * probe that gets one ends without a verdict on the provider (the next
   * device is probed).
   */
  deadToken(
    deviceId: number,
    userId: number,
    outcome: Extract<PushOutcome, { kind: 'dead_token' }>,
    now: number,
    probe: boolean,
  ): { readonly verdict: DeadTokenVerdict; readonly pausedNow: boolean } {
    const { reason } = outcome;
    if (probe) this.probing = false;
    if (!isSuspect(outcome)) return { verdict: 'drop', pausedNow: false };
    this.deadRunUsers.add(userId);
    this.deadRunDevices.add(deviceId);
    if (this.paused || this.deadRunUsers.size >= this.breakerRun) {
      const pausedNow = this.pause(
        `${this.deadRunUsers.size} users in a row answered as dead tokens, none accepted between them (last: ${reason})`,
        now,
        probe ? deviceId : undefined,
      );
      // The devices that tripped it go behind the others: a probe asks a device the breaker has not heard from first.
      if (pausedNow) for (const device of this.deadRunDevices) this.failedDevices.set(device, 1);
      return { verdict: 'trip', pausedNow };
    }
    return { verdict: this.proven ? 'drop' : 'hold', pausedNow: false };
  }

  /**
   * A Retry-After (already capped): the whole provider waits until `until`,
   * or only the subscription that got it (scope 'subscription'). Waits that
   * have passed are forgotten, so the map holds only subscriptions still
   * waiting.
   */
  private waitFor(deviceId: number, until: number, now: number): void {
    if (this.retryAfterScope === 'provider') {
      this.until = Math.max(this.until, until);
      return;
    }
    for (const [device, at] of this.deviceWaits) if (at <= now) this.deviceWaits.delete(device);
    this.deviceWaits.set(deviceId, Math.max(this.deviceWaits.get(deviceId) ?? 0, until));
  }

  /**
   * Paused, or the probe (of `probedDevice`) failed: the next probe after the
   * backoff (answers of requests already on their way when the pause began
   * change nothing). Returns whether it was running before.
   */
  private pause(reason: string, now: number, probedDevice: number | undefined): boolean {
    const pausedNow = !this.paused;
    this.paused = true;
    this.proven = false;
    if (pausedNow) {
      this.reason = reason;
      this.failedProbes = 0;
      this.failedDevices.clear();
      this.until = Math.max(this.until, now + this.probeDelay(++this.failedProbes));
    } else if (probedDevice !== undefined) {
      this.probeFailed(probedDevice, now);
    }
    return pausedNow;
  }

  /** The probe failed: the next one after a longer wait, and another device first. */
  private probeFailed(deviceId: number, now: number): void {
    this.until = Math.max(this.until, now + this.probeDelay(++this.failedProbes));
    this.failedDevices.set(deviceId, (this.failedDevices.get(deviceId) ?? 0) + 1);
  }
}
