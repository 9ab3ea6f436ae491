import type { DuePushRow, PushCounter, PushPlatform, PushPlatforms, PushRegistration } from '../repositories/push.js';

export type { DuePushRow, PushCounter, PushPlatform, PushPlatforms, PushRegistration };

/** PushTokenService's storage: one token belongs to one device. */
export interface PushTokensStorage {
  /** Registers (or replaces) the device's token; the same token on any other device is removed, and the device's queued pushes dropped. */
  registerPushToken(deviceId: number, registration: PushRegistration): Promise<void>;
  unregisterPushToken(deviceId: number): Promise<void>;
  pushRegistration(deviceId: number): Promise<PushRegistration | undefined>;
}

/** A queued notification, as the dispatcher settles it. */
export type QueuedPush = Pick<DuePushRow, 'id' | 'message_id' | 'device_id'>;

/**
 * The push queue as the dispatcher works it off: threads with news become a
 * row per device that should hear of them (expand), due rows go to providers,
 * and a row leaves only once its outcome is stored (settle), so a restart
 * sends what was pending.
 */
export interface PushQueueStorage {
  /**
   * Turns up to `limit` threads with news into a queued notification per
   * device (not live, with a token for one of `platforms`, not muted, not
   * the sender's); a device's pending row takes the newer message. Resolves
   * with how many threads it expanded.
   */
  expandPending(input: { limit: number; now: number; platforms: PushPlatforms }): Promise<number>;
  /** Up to `limit` due notifications (one per device and thread), oldest due first. */
  duePushes(now: number, limit: number): Promise<DuePushRow[]>;
  /** When the earliest notification due after `now` is due, or null when none is. */
  nextDueAfter(now: number): Promise<number | null>;
  /** The notification leaves the queue (unless a newer message took its row meanwhile) and `counter` counts it. */
  settlePush(push: QueuedPush, counter: PushCounter): Promise<void>;
  /** The provider said the token is dead: the notification leaves the queue and the token is removed (unless replaced meanwhile). */
  dropDeadToken(push: QueuedPush, token: string): Promise<void>;
  /** One more failed attempt: due again at `notBefore`. */
  retryPush(pushId: number, notBefore: number, error: string): Promise<void>;
}
