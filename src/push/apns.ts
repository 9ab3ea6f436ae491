import apn from '@parse/node-apn';
import type { Notification, PushOutcome, PushProvider, PushTarget } from './types.js';

export interface ApnsSettings {
  /** PEM text of the .p8 key. */
  readonly key: string;
  readonly keyId: string;
  readonly teamId: string;
  /** Topic for devices that registered none. */
  readonly bundleId: string;
  readonly production: boolean;
  /** Instead of Apple's host (a local test server). */
  readonly connectTo: { readonly host: string; readonly port: number } | undefined;
  readonly requestTimeoutMs: number;
}

/** Apple's reasons that mean the token will never work again. */
const DEAD_TOKEN_REASONS = new Set(['Unregistered', 'BadDeviceToken', 'DeviceTokenNotForTopic', 'ExpiredToken']);

/**
 * APNs over HTTP/2 with token authentication (@parse/node-apn). One provider
 * keeps one HTTP/2 session for every notification. Its own retries are off:
 * it retries 5xx at once and ignores Retry-After, while our queue backs off.
 */
export class ApnsProvider implements PushProvider {
  readonly platform = 'apns' as const;
  private readonly provider: apn.Provider;

  constructor(private readonly settings: ApnsSettings) {
    this.provider = new apn.Provider({
      token: { key: settings.key, keyId: settings.keyId, teamId: settings.teamId },
      production: settings.production,
      ...(settings.connectTo ? { address: settings.connectTo.host, port: settings.connectTo.port } : {}),
      connectionRetryLimit: 0,
      requestTimeout: settings.requestTimeoutMs,
    });
  }

  async send(target: PushTarget, notification: Notification): Promise<PushOutcome> {
    const note = new apn.Notification();
    note.topic = target.topic ?? this.settings.bundleId;
    note.pushType = 'alert';
    note.priority = 10;
    note.expiry = Math.ceil(notification.expiresAt / 1000);
    note.collapseId = notification.collapseKey;
    note.alert = notification.title === undefined ? { body: notification.body } : { title: notification.title, body: notification.body };
    note.badge = notification.badge;
    note.sound = 'default';
    note.payload = { ...notification.data };
    let result: apn.Responses<apn.ResponseSent, apn.ResponseFailure>;
    try {
      result = await this.provider.send(note, target.token);
    } catch (error) {
      return { kind: 'retry', reason: `APNs: ${String(error)}` };
    }
    const failure = result.failed[0];
    if (!failure) return { kind: 'sent', id: undefined };
    const reason = failure.response?.reason;
    const described = `APNs ${failure.status ?? 'no answer'}${reason ? ` ${reason}` : ''}${failure.error ? `: ${failure.error.message}` : ''}`;
    if (failure.status === 410 || (reason !== undefined && DEAD_TOKEN_REASONS.has(reason))) return { kind: 'dead_token', reason: described };
    // No status: the request timed out or the connection failed.
    if (failure.status === undefined || failure.status === 429 || failure.status >= 500) return { kind: 'retry', reason: described };
    return { kind: 'failed', reason: described };
  }

  async close(): Promise<void> {
    await this.provider.shutdown();
  }
}
