import type { PushPlatform } from '../storage/ports/push.js';

export type { PushPlatform };

/** Where a notification goes. */
export interface PushTarget {
  readonly platform: PushPlatform;
  readonly token: string;
  /** APNs topic (bundle id); null: the provider's configured default. */
  readonly topic: string | null;
}

/** One notification, provider-neutral. */
export interface Notification {
  /** Omitted for notifications that say only that there is something new. */
  readonly title?: string;
  readonly body: string;
  /** The user's total unread messages. */
  readonly badge: number;
  /** Notifications with the same key replace each other on the device (one per thread). */
  readonly collapseKey: string;
  /** Strings only: FCM's data payload allows nothing else. */
  readonly data: Readonly<Record<string, string>>;
  /** Unix ms after which the provider should no longer deliver it. */
  readonly expiresAt: number;
}

/**
 * What a provider answered:
 * - `sent`: accepted (`id`: the provider's id for it, when it gives one);
 * - `dead_token`: the token will never work again (the app was uninstalled, or it is malformed);
 * - `retry`: a failure that may pass (5xx, 429, timeout, network); `retryAfterMs`: how long the provider
 *   asked to wait (a 429's or 503's Retry-After): for APNs and FCM, whose one endpoint serves everyone, the
 *   whole provider waits; for Web Push, whose endpoints users choose, only that subscription; at most 5 minutes;
 * - `failed`: this notification is refused for good (bad payload): retrying cannot help;
 * - `provider_error`: the provider refuses this server, whatever the token (credentials, a disabled API, a
 *   wrong APNs topic or environment): no token is removed, the provider is paused and an admin is told.
 */
export type PushOutcome =
  | { readonly kind: 'sent'; readonly id: string | undefined }
  | { readonly kind: 'dead_token'; readonly reason: string }
  | { readonly kind: 'retry'; readonly reason: string; readonly retryAfterMs?: number }
  | { readonly kind: 'failed'; readonly reason: string }
  | { readonly kind: 'provider_error'; readonly reason: string };

/** One push service (APNs, FCM). */
export interface PushProvider {
  readonly platform: PushPlatform;
  /** Never rejects: every failure is an outcome. */
  send(target: PushTarget, notification: Notification): Promise<PushOutcome>;
  /** Closes connections; for shutdown. */
  close(): Promise<void>;
}
