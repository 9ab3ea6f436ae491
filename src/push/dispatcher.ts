import type { Logger } from 'pino';
import type { Clock, Timer } from '../clock.js';
import type { PushQueueListener } from '../services/types.js';
import type { DuePush, PushCounter, PushQueueStorage } from '../storage/ports/push.js';
import { type ContentSettings, notificationFor } from './content.js';
import { type GateState, MAX_RETRY_AFTER_MS, ProviderGate } from './provider-gate.js';
import type { Providers } from './providers.js';
import type { PushOutcome, PushPlatform } from './types.js';

export interface DispatcherSettings extends ContentSettings {
  /** Attempts per notification before it is given up; 0: no count, only its lifetime (maxAgeMs). */
  readonly maxAttempts: number;
  readonly retryBaseMs: number;
  readonly concurrency: number;
  /** Suspect dead-token answers from this many users in a row, none accepted between them, pause the provider (default 20). */
  readonly breakerDeadTokens?: number;
  /**
   * How long a wake-up by a stored message waits (ms), so that the messages of a burst share one pass: a pass
   * is two write transactions (the expansion, the claim), each its own commit and fsync when the server is not
   * busy enough to gather them with other writes. 0 (the default): the next turn of the event loop.
   */
  readonly gatherMs?: number;
}

export interface DispatcherDeps {
  readonly storage: PushQueueStorage;
  /** Every wait (the next due row, a retry, the pause after a failed write) is a timer of this clock. */
  readonly clock: Clock;
  readonly log: Logger;
  readonly providers: Providers;
  /** The user's badge (unread, muted threads left out); read once per user in a pass. */
  readonly badge: (userId: number) => Promise<number>;
  readonly settings: DispatcherSettings;
}

/** Longest wait between two attempts of one notification, and between two probes of a paused provider. */
const MAX_RETRY_MS = 5 * 60_000;
const DEFAULT_BREAKER_DEAD_TOKENS = 20;
/** What an admin should check when a provider refuses this server, by platform. */
const CHECK: Readonly<Record<string, string>> = {
  apns:
    'apns.bundle_id (the app\'s bundle id), apns.environment (sandbox for development builds, production for TestFlight and the App Store), and apns.key_file, key_id, team_id (a key of that team, enabled for APNs)',
  fcm: 'the Firebase project of fcm.service_account_file: the Firebase Cloud Messaging API (V1) enabled, the service account allowed to send (cloudmessaging.messages.create, e.g. the Firebase Cloud Messaging API Admin role), its key not revoked; for iOS devices, the APNs key uploaded to the project',
  webpush: 'the VAPID keys (webpush.vapid_file) and webpush.subject',
};
/** Threads with news expanded to their devices per transaction. */
const EXPAND_BATCH = 100;
/**
 * How long a claimed notification is this node's: longer than a provider
 * request may take (request_timeout_ms is at most 2 minutes) with the writes
 * around it. A node that dies holding claims delays those notifications by
 * this much, then another node sends them (the node itself, restarted under
 * its name, at once).
 */
export const CLAIM_LEASE_MS = 5 * 60_000;

/**
 * Works off the push queue, away from the message path: a send only adds
 * rows in its own transaction and wakes this up; nothing here is awaited by
 * anyone sending. At most `concurrency` notifications wait for a provider at
 * once, one per (device, thread), so a hung provider holds a bounded number
 * and nothing else. Rows are claimed before they are sent, so that with
 * several nodes on one queue each notification goes out from one of them. A
 * row leaves the queue only once its outcome is stored, so a restart sends
 * what was pending (a notification sent just before a crash may go again;
 * the collapse key shows it once).
 */
export class PushDispatcher implements PushQueueListener {
  /** `device:thread` of the notifications waiting for a provider. */
  private readonly inFlight = new Set<string>();
  private immediate = false;
  /** The gathering wait of pushQueued, while it runs. */
  private gathering: Timer | undefined;
  private timer: Timer | undefined;
  private timerAt: number | undefined;
  private stopped = false;
  /** A pass is running (it awaits its expansion write): another waits for it. */
  private passing = false;
  private passAgain = false;
  private readonly platforms;
  /** Each provider's pause, Retry-After and dead-token breaker. */
  private readonly gates = new Map<PushPlatform, ProviderGate>();

  constructor(private readonly deps: DispatcherDeps) {
    this.platforms = { apns: deps.providers.has('apns'), fcm: deps.providers.has('fcm'), webpush: deps.providers.has('webpush') };
    const { settings } = deps;
    for (const platform of deps.providers.keys()) {
      // A Web Push endpoint is a URL a user chose: its Retry-After holds that subscription, never the provider.
      const scope = platform === 'webpush' ? 'subscription' : 'provider';
      this.gates.set(platform, new ProviderGate(settings.breakerDeadTokens ?? DEFAULT_BREAKER_DEAD_TOKENS, (n) => retryDelay(settings.retryBaseMs, n), scope));
    }
  }

  /** Each configured provider's pause (this node's view): for metrics and the log. */
  providerStates(): ReadonlyMap<PushPlatform, GateState> {
    return new Map([...this.gates].map(([platform, gate]) => [platform, gate.state()]));
  }

  /** Starts with what the queue already holds (pushes pending at the last stop). */
  start(): void {
    this.wake();
  }

  pushQueued(): void {
    const gatherMs = this.deps.settings.gatherMs ?? 0;
    if (gatherMs <= 0) return this.wake();
    if (this.stopped || this.gathering) return;
    this.gathering = this.deps.clock.setTimeout(() => {
      this.gathering = undefined;
      this.wake();
    }, gatherMs);
  }

  /**
   * No new work; what a provider answers from now on is dropped, and the
   * claims are released: sent again by another node, or after the next start.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) this.deps.clock.clearTimer(this.timer);
    if (this.gathering) this.deps.clock.clearTimer(this.gathering);
    await Promise.all([...this.deps.providers.values()].map((provider) => provider.close().catch(() => {})));
    // Storage gone: the claims end with their lease instead.
    await this.deps.storage.releaseClaims().catch((error: unknown) => this.deps.log.warn({ err: error }, 'push claims not released; they end with their lease'));
  }

  private wake(): void {
    if (this.stopped || this.immediate) return;
    this.immediate = true;
    setImmediate(() => {
      this.immediate = false;
      this.pass();
    });
  }

  /** Threads with news become per-device rows (one write), then due rows go to the providers. */
  private pass(): void {
    if (this.stopped) return;
    if (this.passing) {
      this.passAgain = true;
      return;
    }
    this.passing = true;
    void this.expand()
      .then(() => this.sendDue())
      .catch((error: unknown) => {
        if (!this.stopped) this.deps.log.error({ err: error }, 'push queue pass failed');
      })
      .finally(() => {
        this.passing = false;
        if (this.passAgain) {
          this.passAgain = false;
          this.wake();
        }
      });
  }

  private async expand(): Promise<void> {
    const { storage, clock } = this.deps;
    const expanded = await storage.expandPending({ limit: EXPAND_BATCH, now: clock.now(), platforms: this.platforms });
    if (expanded === EXPAND_BATCH) this.passAgain = true;
  }

  /** A pass at `at` (Unix ms), unless one is due sooner. */
  private wakeAt(at: number): void {
    const { clock } = this.deps;
    if (this.stopped || (this.timerAt !== undefined && this.timerAt <= at)) return;
    if (this.timer) clock.clearTimer(this.timer);
    this.timerAt = at;
    this.timer = clock.setTimeout(() => {
      this.timer = undefined;
      this.timerAt = undefined;
      this.pass();
    }, Math.max(0, at - clock.now()));
  }

  private async sendDue(): Promise<void> {
    const { storage, settings, clock } = this.deps;
    // Every slot busy: the next completion wakes us (the due query is not free on a long queue).
    if (this.stopped || this.inFlight.size >= settings.concurrency) return;
    const now = clock.now();
    // Rows in flight come back too (claimed by this node): ask for enough to fill every free slot.
    const claimed = await storage.claimDuePushes({ now, limit: settings.concurrency, leaseMs: CLAIM_LEASE_MS });
    // One badge read per user in a pass: a user's several devices (or threads) share it.
    const badges = new Map<number, Promise<number>>();
    const waiting = new Map<number, number[]>();
    for (const row of claimed) {
      if (this.stopped) return;
      if (this.inFlight.size >= settings.concurrency) break;
      const key = `${row.deviceId}:${row.threadId}`;
      if (this.inFlight.has(key)) continue;
      const gate = row.pushPlatform ? this.gates.get(row.pushPlatform) : undefined;
      // Rows of a paused (or waiting) provider are put back until its next probe, their attempts untouched; while
      // the probe is on its way they stay claimed (its end wakes us). The skip checks can wait with them.
      const admission = gate?.admit(now, row.deviceId) ?? { kind: 'send' };
      if (admission.kind === 'busy') continue;
      if (admission.kind === 'wait') {
        waiting.set(admission.until, [...(waiting.get(admission.until) ?? []), row.id]);
        continue;
      }
      this.inFlight.add(key);
      void this.handle(row, now, badges, admission.kind === 'probe')
        .catch(async (error: unknown) => {
          if (this.stopped) return;
          this.deps.log.error({ err: error, device: row.deviceId }, 'push failed in chatd');
          // Recording the outcome failed (a disk error, say): hold this one back instead of sending it again at once.
          await new Promise<void>((resolve) => clock.setTimeout(resolve, Math.max(1000, settings.retryBaseMs)));
        })
        .finally(() => {
          if (admission.kind === 'probe') gate?.probeEnded();
          this.inFlight.delete(key);
          // A slot is free, and a newer notification of the same thread may be waiting.
          this.wake();
        });
    }
    for (const [until, ids] of waiting) {
      if (this.stopped) return;
      await storage.deferPushes(ids, until);
      this.wakeAt(until);
    }
    // A full batch of which some only waited: more rows may be due now (a late timer, several waits passed at
    // once). Deferring them frees no slot and ends no request, so nothing else would come back for them.
    if (waiting.size > 0 && claimed.length >= settings.concurrency) this.passAgain = true;
    // Due rows not taken now are in flight or wait for a slot: their completions wake us.
    if (this.stopped) return;
    const next = await storage.nextDueAfter(now);
    if (next !== null) this.wakeAt(next);
  }

  /** `probe`: the row was admitted as the probe of its paused provider. */
  private async handle(row: DuePush, now: number, badges: Map<number, Promise<number>>, probe: boolean): Promise<void> {
    const { settings, providers } = this.deps;
    const skipped = skipReason(row, now, settings.maxAgeMs);
    if (skipped) {
      await this.settle(row, skipped === 'expired' ? 'failed' : 'skipped');
      this.deps.log.debug({ device: row.deviceId, thread: row.threadId, reason: skipped }, 'push not sent');
      return;
    }
    const provider = row.pushPlatform ? providers.get(row.pushPlatform) : undefined;
    if (!provider || !row.pushPlatform || !row.pushToken) {
      await this.settle(row, 'failed');
      this.deps.log.warn({ device: row.deviceId, platform: row.pushPlatform }, 'push not sent: no provider configured for the device\'s platform');
      return;
    }
    const notification = notificationFor(row, await this.badgeOf(row.userId, badges), settings);
    const outcome = await provider.send({ platform: row.pushPlatform, token: row.pushToken, topic: row.pushTopic }, notification);
    if (this.stopped) return;
    await this.record(row, row.pushToken, outcome, probe);
  }

  /** The user's badge, read once per pass (a failed read is not kept: the next row of the user tries again). */
  private badgeOf(userId: number, badges: Map<number, Promise<number>>): Promise<number> {
    let badge = badges.get(userId);
    if (!badge) {
      badge = this.deps.badge(userId);
      badges.set(userId, badge);
      badge.catch(() => badges.delete(userId));
    }
    return badge;
  }

  private async record(row: DuePush, token: string, outcome: PushOutcome, probe: boolean): Promise<void> {
    const { storage, log, clock } = this.deps;
    const platform = row.pushPlatform as PushPlatform;
    const gate = this.gates.get(platform) as ProviderGate;
    const context = { device: row.deviceId, thread: row.threadId, message: row.messageId };
    const now = clock.now();
    switch (outcome.kind) {
      case 'sent': {
        const { resumed } = gate.answered(outcome, now, row.deviceId, probe);
        await this.settle(row, 'sent');
        log.debug({ ...context, id: outcome.id }, 'push sent');
        if (resumed) {
          log.warn({ platform }, 'push provider resumed: it accepted a notification; the ones that waited go out now');
          this.wake();
        }
        return;
      }
      case 'dead_token': {
        const { verdict, pausedNow } = gate.deadToken(row.deviceId, row.userId, outcome, now, probe);
        if (verdict === 'drop') {
          await storage.dropDeadToken(row, token);
          log.warn({ ...context, reason: outcome.reason }, 'push token removed: the provider says it is no longer valid');
        } else if (verdict === 'hold') {
          log.info({ ...context, reason: outcome.reason }, 'push token kept for now: the provider calls it dead, but has accepted no notification since chatd started');
          await this.retry(row, outcome.reason, now);
        } else {
          await this.paused(row, platform, gate, pausedNow, outcome.reason);
        }
        return;
      }
      case 'provider_error': {
        const { pausedNow } = gate.answered(outcome, now, row.deviceId, probe);
        await this.paused(row, platform, gate, pausedNow, outcome.reason);
        return;
      }
      case 'failed':
        gate.answered(outcome, now, row.deviceId, probe);
        await this.settle(row, 'failed');
        log.warn({ ...context, reason: outcome.reason }, 'push refused by the provider; not retried');
        return;
      case 'retry': {
        gate.answered(outcome, now, row.deviceId, probe);
        if (outcome.retryAfterMs !== undefined) {
          const waitMs = Math.min(outcome.retryAfterMs, MAX_RETRY_AFTER_MS);
          if (platform === 'webpush') {
            log.info({ ...context, platform, retry_after_ms: waitMs, reason: outcome.reason }, 'push subscription asked to wait (Retry-After): its notifications wait until then');
          } else {
            log.info({ platform, retry_after_ms: waitMs, reason: outcome.reason }, 'push provider asked to wait (Retry-After): its notifications wait until then');
          }
        }
        await this.retry(row, outcome.reason, now);
        return;
      }
    }
  }

  /**
   * One more attempt later: backoff (doubling, at most 5 minutes), not before
   * the provider's own wait; given up once the notification's lifetime
   * (push.max_age_seconds after its message) would end first, or after
   * push.max_attempts when that is set.
   */
  private async retry(row: DuePush, reason: string, now: number): Promise<void> {
    const { storage, log, settings } = this.deps;
    const context = { device: row.deviceId, thread: row.threadId, message: row.messageId };
    const attempts = row.attempts + 1;
    if (settings.maxAttempts > 0 && attempts >= settings.maxAttempts) {
      await this.settle(row, 'failed');
      log.warn({ ...context, attempts, reason }, 'push given up after repeated provider failures');
      return;
    }
    const wait = this.gates.get(row.pushPlatform as PushPlatform)?.notBefore(row.deviceId) ?? 0;
    const at = Math.max(now + retryDelay(settings.retryBaseMs, attempts), wait);
    if (at > row.createdAt + settings.maxAgeMs) {
      await this.settle(row, 'failed');
      log.warn({ ...context, attempts, reason }, 'push given up: its lifetime (push.max_age_seconds) ends before the provider takes it');
      return;
    }
    await storage.retryPush(row.id, at, reason);
    log.info({ ...context, attempts, retry_in_ms: at - now, reason }, 'push failed for now; will retry');
    this.wakeAt(at);
  }

  /** The provider refuses this server: the row waits for the next probe, nothing removed, no attempt counted; logged once per pause. */
  private async paused(row: DuePush, platform: PushPlatform, gate: ProviderGate, pausedNow: boolean, reason: string): Promise<void> {
    const { storage, log } = this.deps;
    // A failed probe's row goes behind the others (notBefore): the next probe asks another device.
    const until = gate.notBefore(row.deviceId);
    await storage.deferPushes([row.id], until);
    if (pausedNow) {
      log.error(
        { platform, reason: gate.state().reason ?? reason, check: CHECK[platform] ?? `the [${platform}] settings` },
        `push provider paused: ${platform} refuses this server whatever the device; no token is removed, notifications wait and go out once a probe is accepted`,
      );
    } else {
      log.info({ platform, reason, next_probe_in_ms: until - this.deps.clock.now() }, 'push provider still paused');
    }
    this.wakeAt(until);
  }

  /** The notification (and the older ones of its thread it stood for) leaves the queue, counted. */
  private settle(row: DuePush, counter: PushCounter): Promise<void> {
    return this.deps.storage.settlePush(row, counter);
  }
}

export type SkipReason = 'revoked' | 'no_token' | 'online' | 'delivered' | 'read' | 'deleted' | 'muted' | 'left' | 'expired';

/** Why a queued notification is no longer wanted, if it is not; pure, for the table test. */
export function skipReason(
  row: Pick<DuePush, 'deviceRevoked' | 'pushToken' | 'deviceLive' | 'deliveredSeq' | 'readSeq' | 'seq' | 'deleted' | 'muted' | 'mentioned' | 'left' | 'createdAt'>,
  now: number,
  maxAgeMs: number,
): SkipReason | undefined {
  if (row.deviceRevoked) return 'revoked';
  if (!row.pushToken) return 'no_token';
  // Came online before it went out: the message reached it live or from its inbox.
  if (row.deviceLive) return 'online';
  // It came online, got the message and went away again while the notification waited.
  if (row.deliveredSeq >= row.seq) return 'delivered';
  // Read on another device meanwhile.
  if (row.readSeq >= row.seq) return 'read';
  // Deleted for everyone meanwhile: its text is gone, and so is the reason to tell.
  if (row.deleted) return 'deleted';
  // Mute does not silence a mention (a mention the sender has since edited away does not count).
  if (row.muted && !row.mentioned) return 'muted';
  if (row.left) return 'left';
  if (now - row.createdAt > maxAgeMs) return 'expired';
  return undefined;
}

/** Exponential backoff with jitter: base·2^(attempt−1), between half and all of it, at most 5 minutes. */
export function retryDelay(baseMs: number, attempt: number, random: () => number = Math.random): number {
  const full = Math.min(MAX_RETRY_MS, baseMs * 2 ** (attempt - 1));
  return Math.round(full / 2 + (random() * full) / 2);
}
