import apn from '@parse/node-apn';
import { suspectDeadToken } from './provider-gate.js';
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

/**
 * Apple's reasons that mean the token will never work again (with 410
 * Unregistered and ExpiredToken), but which are also what EVERY token answers
 * when apns.environment (BadDeviceToken) or apns.bundle_id
 * (DeviceTokenNotForTopic) is wrong: suspect, so the dispatcher's circuit
 * breaker decides (provider-gate.ts, docs/push.md).
 */
const SUSPECT_DEAD_REASONS = new Set(['BadDeviceToken', 'DeviceTokenNotForTopic']);
/**
 * Reasons that refuse this server whatever the token (Apple's "Handling
 * notification responses from APNs"): the provider token (key, key id, team
 * id, its environment; ExpiredProviderToken too, which node-apn answers by
 * signing a new one, so the next probe passes unless the clock is off), a
 * certificate, a wrong host or path (apns.connect_to).
 */
const PROVIDER_REASONS = new Set([
  'InvalidProviderToken',
  'ExpiredProviderToken',
  'MissingProviderToken',
  'UnrelatedKeyIdInToken',
  'BadEnvironmentKeyIdInToken',
  'BadEnvironmentKeyInToken',
  'BadCertificate',
  'BadCertificateEnvironment',
  'Forbidden',
  'BadPath',
  'MethodNotAllowed',
]);
/** Topic refusals: the whole provider's when the topic is apns.bundle_id, one device's when it registered its own. */
const TOPIC_REASONS = new Set(['TopicDisallowed', 'BadTopic', 'MissingTopic']);

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
    return classifyApns(failure, target.topic !== null);
  }

  async close(): Promise<void> {
    await this.provider.shutdown();
  }
}

/**
 * What an APNs failure means for chatd (exported for the table test).
 * `ownTopic`: the device registered a topic of its own (not apns.bundle_id).
 */
export function classifyApns(
  failure: Pick<apn.ResponseFailure, 'status' | 'response' | 'error'> & { readonly retryAfter?: unknown },
  ownTopic: boolean,
): PushOutcome {
  const reason = failure.response?.reason;
  const described = `APNs ${failure.status ?? 'no answer'}${reason ? ` ${reason}` : ''}${failure.error ? `: ${failure.error.message}` : ''}`;
  // ExpiredProviderToken comes as an error named after it, with no response body.
  const named = reason ?? (failure.status === 403 ? failure.error?.message : undefined);
  if (failure.status === 410 || named === 'Unregistered' || named === 'ExpiredToken') return { kind: 'dead_token', reason: described };
  if (named !== undefined && SUSPECT_DEAD_REASONS.has(named)) return suspectDeadToken(described);
  if (named !== undefined && PROVIDER_REASONS.has(named)) return { kind: 'provider_error', reason: described };
  if (named !== undefined && TOPIC_REASONS.has(named)) return ownTopic ? { kind: 'failed', reason: described } : { kind: 'provider_error', reason: described };
  // No status: the request timed out or the connection failed. 429 TooManyRequests is about one token (too many
  // notifications to it in a row); Apple documents no Retry-After, and node-apn cannot read one (it looks for the
  // header under a capitalised name, which HTTP/2 never delivers), but one that comes through is honoured.
  if (failure.status === undefined || failure.status === 429 || failure.status >= 500) {
    const seconds = typeof failure.retryAfter === 'string' || typeof failure.retryAfter === 'number' ? Number(failure.retryAfter) : NaN;
    return Number.isFinite(seconds) && seconds > 0 ? { kind: 'retry', reason: described, retryAfterMs: seconds * 1000 } : { kind: 'retry', reason: described };
  }
  if (failure.status === 403) return { kind: 'provider_error', reason: described };
  return { kind: 'failed', reason: described };
}
