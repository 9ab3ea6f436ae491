import type { MessageKind } from './messaging.js';
import type { ThreadKind } from './threads.js';

export type PushPlatform = 'apns' | 'fcm' | 'webpush';

/** The providers configured: devices registered with another get no notifications queued. */
export interface PushPlatforms {
  readonly apns: boolean;
  readonly fcm: boolean;
  /** Optional (absent: off) so that the many engine tests written before Web Push need not name it. */
  readonly webpush?: boolean;
}

/** Whether any provider is configured: without one, nothing is queued at all. */
export function anyPushPlatform(platforms: PushPlatforms): boolean {
  return platforms.apns || platforms.fcm || platforms.webpush === true;
}

export interface PushRegistration {
  readonly platform: PushPlatform;
  readonly token: string;
  /** APNs: the app's bundle id (the notification's topic); null for FCM, Web Push or the configured default. */
  readonly topic: string | null;
}

/** The push worker's counters (`chatd stats`). */
export type PushCounter = 'sent' | 'failed' | 'dropped_tokens' | 'skipped';

/** A due notification with everything needed to decide on it and build it, as every engine returns it. */
export interface DuePush {
  readonly id: number;
  readonly deviceId: number;
  readonly threadId: number;
  readonly messageId: number;
  /** When the message was stored (Unix ms). */
  readonly createdAt: number;
  readonly attempts: number;
  readonly userId: number;
  /** The device's registration now (null: it has none any more). */
  readonly pushPlatform: PushPlatform | null;
  readonly pushToken: string | null;
  readonly pushTopic: string | null;
  readonly deviceLive: boolean;
  readonly deviceRevoked: boolean;
  readonly seq: number;
  readonly kind: MessageKind;
  readonly body: string;
  /** The message's attachments (JSON text of the AttachmentJson list), or null: a notification for a photo says "Photo". */
  readonly attachments: string | null;
  readonly senderName: string;
  readonly threadKind: ThreadKind;
  readonly threadTitle: string | null;
  /** The recipient's read cursor in the thread. */
  readonly readSeq: number;
  /** The recipient muted the thread since. */
  readonly muted: boolean;
  /** The message mentions the recipient (now: an edit may have added or removed the mention): a mention goes through mute. */
  readonly mentioned: boolean;
  /** The message was deleted for everyone since it was queued: nothing to tell any more. */
  readonly deleted: boolean;
  /** The recipient left the thread since. */
  readonly left: boolean;
  /** How far the device has acknowledged the thread. */
  readonly deliveredSeq: number;
}

/** PushTokenService's storage: one token belongs to one device. */
export interface PushTokensStorage {
  /** Registers (or replaces) the device's token; the same token on any other device is removed, and the device's queued pushes dropped. */
  registerPushToken(deviceId: number, registration: PushRegistration): Promise<void>;
  unregisterPushToken(deviceId: number): Promise<void>;
  pushRegistration(deviceId: number): Promise<PushRegistration | undefined>;
}

/** Who claims: a node's name that stays across restarts, so that a node restarted after a crash takes its claims back at once. */
export interface PushClaimant {
  readonly claimant?: string;
}

/** A queued notification, as the dispatcher settles it. */
export type QueuedPush = Pick<DuePush, 'id' | 'messageId' | 'deviceId'>;

/**
 * The push queue as the dispatcher works it off: threads with news become a
 * row per device that should hear of them (expand), due rows are claimed and
 * go to providers, and a row leaves only once its outcome is stored (settle),
 * so a restart sends what was pending. Several nodes may work one queue: each
 * storage object is one claimant (a node), and a claimed row goes to no other
 * claimant until it is settled, retried or released, or its lease runs out
 * (its node died: another takes it over). A claimant's own claims come back
 * to it, so a node restarted under the same name takes them back at once.
 */
export interface PushQueueStorage {
  /**
   * Turns up to `limit` threads with news into a queued notification per
   * device (not live, with a token for one of `platforms`, not muted, not
   * the sender's); a device's pending row takes the newer message. Resolves
   * with how many threads it expanded. (Members who muted the thread but are
   * mentioned were queued by the message's own unit: see the engines' append.)
   */
  expandPending(input: { limit: number; now: number; platforms: PushPlatforms }): Promise<number>;
  /**
   * Claims up to `limit` due notifications (one per device and thread),
   * oldest due first, until `now + leaseMs`: rows claimed by another claimant
   * whose lease has not run out are not due; this claimant's own are (those
   * still in flight the dispatcher skips). A unit of work (it writes the claim).
   */
  claimDuePushes(input: { now: number; limit: number; leaseMs: number }): Promise<DuePush[]>;
  /** When the earliest notification not due at `now` becomes due (its not_before, or the end of another's claim), or null when none will. */
  nextDueAfter(now: number): Promise<number | null>;
  /**
   * The notification leaves the queue and `counter` counts it; unless a newer
   * message took its row meanwhile: then the row stays, its claim released so
   * that the newer message goes out.
   */
  settlePush(push: QueuedPush, counter: PushCounter): Promise<void>;
  /** The provider said the token is dead: the notification leaves the queue and the token is removed (unless replaced meanwhile). */
  dropDeadToken(push: QueuedPush, token: string): Promise<void>;
  /** One more failed attempt: due again at `notBefore`, its claim released. */
  retryPush(pushId: number, notBefore: number, error: string): Promise<void>;
  /** At a clean stop: this claimant's claims are released, so another node (or this one, restarted) sends them without waiting for the lease. */
  releaseClaims(): Promise<void>;
}
