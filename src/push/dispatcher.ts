import type { Logger } from 'pino';
import type { Clock, Timer } from '../clock.js';
import type { PushQueueListener } from '../services/types.js';
import type { DuePush, PushCounter, PushQueueStorage } from '../storage/ports/push.js';
import { type ContentSettings, notificationFor } from './content.js';
import type { Providers } from './providers.js';
import type { PushOutcome } from './types.js';

export interface DispatcherSettings extends ContentSettings {
  readonly maxAttempts: number;
  readonly retryBaseMs: number;
  readonly concurrency: number;
}

export interface DispatcherDeps {
  readonly storage: PushQueueStorage;
  /** Every wait (the next due row, a retry, the pause after a failed write) is a timer of this clock. */
  readonly clock: Clock;
  readonly log: Logger;
  readonly providers: Providers;
  /** The user's total unread messages: the badge. */
  readonly badge: (userId: number) => Promise<number>;
  readonly settings: DispatcherSettings;
}

/** Longest wait between two attempts of one notification. */
const MAX_RETRY_MS = 5 * 60_000;
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
  private timer: Timer | undefined;
  private timerAt: number | undefined;
  private stopped = false;
  /** A pass is running (it awaits its expansion write): another waits for it. */
  private passing = false;
  private passAgain = false;
  private readonly platforms;

  constructor(private readonly deps: DispatcherDeps) {
    this.platforms = { apns: deps.providers.has('apns'), fcm: deps.providers.has('fcm'), webpush: deps.providers.has('webpush') };
  }

  /** Starts with what the queue already holds (pushes pending at the last stop). */
  start(): void {
    this.wake();
  }

  pushQueued(): void {
    this.wake();
  }

  /**
   * No new work; what a provider answers from now on is dropped, and the
   * claims are released: sent again by another node, or after the next start.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) this.deps.clock.clearTimer(this.timer);
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
    for (const row of claimed) {
      if (this.stopped) return;
      if (this.inFlight.size >= settings.concurrency) break;
      const key = `${row.deviceId}:${row.threadId}`;
      if (this.inFlight.has(key)) continue;
      this.inFlight.add(key);
      void this.handle(row, now)
        .catch(async (error: unknown) => {
          if (this.stopped) return;
          this.deps.log.error({ err: error, device: row.deviceId }, 'push failed in chatd');
          // Recording the outcome failed (a disk error, say): hold this one back instead of sending it again at once.
          await new Promise<void>((resolve) => clock.setTimeout(resolve, Math.max(1000, settings.retryBaseMs)));
        })
        .finally(() => {
          this.inFlight.delete(key);
          // A slot is free, and a newer notification of the same thread may be waiting.
          this.wake();
        });
    }
    // Due rows not taken now are in flight or wait for a slot: their completions wake us.
    if (this.stopped) return;
    const next = await storage.nextDueAfter(now);
    if (next !== null) this.wakeAt(next);
  }

  private async handle(row: DuePush, now: number): Promise<void> {
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
    const notification = notificationFor(row, await this.deps.badge(row.userId), settings);
    const outcome = await provider.send({ platform: row.pushPlatform, token: row.pushToken, topic: row.pushTopic }, notification);
    if (this.stopped) return;
    await this.record(row, row.pushToken, outcome);
  }

  private async record(row: DuePush, token: string, outcome: PushOutcome): Promise<void> {
    const { storage, log, settings } = this.deps;
    const context = { device: row.deviceId, thread: row.threadId, message: row.messageId };
    switch (outcome.kind) {
      case 'sent':
        await this.settle(row, 'sent');
        log.debug({ ...context, id: outcome.id }, 'push sent');
        return;
      case 'dead_token':
        await storage.dropDeadToken(row, token);
        log.warn({ ...context, reason: outcome.reason }, 'push token removed: the provider says it is no longer valid');
        return;
      case 'failed':
        await this.settle(row, 'failed');
        log.warn({ ...context, reason: outcome.reason }, 'push refused by the provider; not retried');
        return;
      case 'retry': {
        const attempts = row.attempts + 1;
        if (attempts >= settings.maxAttempts) {
          await this.settle(row, 'failed');
          log.warn({ ...context, attempts, reason: outcome.reason }, 'push given up after repeated provider failures');
          return;
        }
        // Not sooner than the provider asked (a 429's or 503's Retry-After).
        const delay = Math.max(retryDelay(settings.retryBaseMs, attempts), outcome.retryAfterMs ?? 0);
        const at = this.deps.clock.now() + delay;
        await storage.retryPush(row.id, at, outcome.reason);
        log.info({ ...context, attempts, retry_in_ms: delay, reason: outcome.reason }, 'push failed for now; will retry');
        this.wakeAt(at);
        return;
      }
    }
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
