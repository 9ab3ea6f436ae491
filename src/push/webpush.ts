import webpush, { WebPushError } from 'web-push';
import { hostAllowed, webPushSubscriptionOf } from '../services/webpush-subscription.js';
import { webPushPayload } from './content.js';
import { suspectDeadToken } from './provider-gate.js';
import type { Notification, PushOutcome, PushProvider, PushTarget } from './types.js';
import type { VapidKeys } from './vapid.js';

export interface WebPushSettings {
  readonly vapid: VapidKeys;
  /** A mailto: or https: URL push services may contact about this server. */
  readonly subject: string;
  /** Hosts an endpoint may name (webpush.allowed_hosts), checked again at each send: the list may have shrunk since registration. */
  readonly allowedHosts: readonly string[];
  readonly requestTimeoutMs: number;
}

/**
 * Web Push (RFC 8030) to browsers with `web-push`: the payload encrypted to
 * the subscription's keys (aes128gcm, RFC 8291), the request signed with the
 * server's VAPID key (RFC 8292). One HTTPS POST per notification, to the
 * endpoint the browser's push service gave it; never a redirect followed
 * (web-push does not follow them), so the endpoint's host, checked against
 * webpush.allowed_hosts, is the only host reached.
 */
export class WebPushProvider implements PushProvider {
  readonly platform = 'webpush' as const;

  constructor(private readonly settings: WebPushSettings) {}

  get publicKey(): string {
    return this.settings.vapid.publicKey;
  }

  async send(target: PushTarget, notification: Notification): Promise<PushOutcome> {
    let subscription;
    try {
      subscription = webPushSubscriptionOf(target.token);
    } catch {
      return { kind: 'dead_token', reason: 'Web Push: the stored subscription is not JSON' };
    }
    const host = safeHost(subscription.endpoint);
    if (host === undefined || !hostAllowed(host, this.settings.allowedHosts)) {
      // Kept (the setting may come back): an operator who narrowed the list did not ask to lose subscriptions.
      return { kind: 'failed', reason: `Web Push: endpoint host ${host ?? '(none)'} is no longer in webpush.allowed_hosts` };
    }
    const { vapid, subject, requestTimeoutMs } = this.settings;
    let timer: NodeJS.Timeout | undefined;
    // web-push's timeout is the socket's idle time; this bounds the whole request.
    const timeout = new Promise<PushOutcome>((resolve) => {
      timer = setTimeout(() => resolve({ kind: 'retry', reason: `Web Push: no answer within ${requestTimeoutMs} ms` }), requestTimeoutMs);
    });
    const sent = webpush
      .sendNotification(subscription, JSON.stringify(webPushPayload(notification)), {
        vapidDetails: { subject, publicKey: vapid.publicKey, privateKey: vapid.privateKey },
        // Seconds the push service keeps it for a browser that is offline: the notification's remaining lifetime.
        TTL: Math.max(0, Math.floor((notification.expiresAt - Date.now()) / 1000)),
        urgency: 'high',
        // One per thread: a newer notification replaces an undelivered older one at the push service.
        topic: notification.collapseKey.slice(0, 32),
        contentEncoding: 'aes128gcm',
        timeout: requestTimeoutMs,
      })
      .then(
        (result): PushOutcome => ({ kind: 'sent', id: headerOf(result.headers, 'location') }),
        (error: unknown): PushOutcome => classify(error),
      );
    try {
      return await Promise.race([sent, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {}
}

/** What a push service's answer means (RFC 8030 §5–8, RFC 8292 §4). */
export function classify(error: unknown, now: number = Date.now()): PushOutcome {
  if (!(error instanceof WebPushError)) return { kind: 'retry', reason: `Web Push: ${(error as Error)?.message ?? String(error)}` };
  const status = error.statusCode;
  const body = typeof error.body === 'string' ? error.body.slice(0, 200).trim() : '';
  const reason = `Web Push ${status}${body ? `: ${body}` : ''}`;
  // Gone, or never there: the browser unsubscribed, or the subscription expired.
  if (status === 404 || status === 410) return { kind: 'dead_token', reason };
  if (status === 429 || status >= 500) {
    const retryAfterMs = retryAfterOf(headerOf(error.headers, 'retry-after'), now);
    return retryAfterMs === undefined ? { kind: 'retry', reason } : { kind: 'retry', reason, retryAfterMs };
  }
  // 403 (RFC 8292 §4.2), and 401 (Mozilla's autopush answers so for the same case): the subscription was made
  // with another application server key: a stale one after the key pair changed, or one a user made so on
  // purpose. The endpoint is the user's choice, so its answer speaks for that subscription only, never for
  // the provider: a dead token; but a new pair of ours (or a VAPID signature a push service refuses) makes
  // every subscription answer so: suspect, for the dead-token circuit breaker, which pauses Web Push only when
  // subscriptions of many different users answer so in a row.
  if (status === 403 || status === 401) {
    return suspectDeadToken(`${reason} (the subscription was made with another VAPID key than webpush.vapid_file's, or the push service refuses this server's VAPID signature: check webpush.vapid_file and webpush.subject)`);
  }
  // 400, 413 (payload too large) and the rest: this request will not do better.
  return { kind: 'failed', reason };
}

/** A Retry-After value (seconds, or an HTTP date) as milliseconds from `now`; undefined when absent or unreadable. */
export function retryAfterOf(value: string | undefined, now: number): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function headerOf(headers: unknown, name: string): string | undefined {
  const value = (headers as Record<string, string | string[] | undefined> | undefined)?.[name];
  return Array.isArray(value) ? value[0] : value;
}

function safeHost(endpoint: string): string | undefined {
  try {
    return new URL(endpoint).hostname.toLowerCase();
  } catch {
    return undefined;
  }
}
