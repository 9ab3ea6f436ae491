import { ChatError } from '../errors.js';
import type { PushPlatform, PushPlatforms, PushRegistration, PushTokensStorage } from '../storage/ports/push.js';
import type { Principal } from './types.js';
import { parseWebPushSubscription } from './webpush-subscription.js';

export interface PushTokenDeps {
  readonly storage: PushTokensStorage;
  /** Which providers this server is configured for. */
  readonly enabled: PushPlatforms;
  /** Hosts a Web Push endpoint may name (webpush.allowed_hosts, parsed). */
  readonly webPushHosts: readonly string[];
}

export interface PushTokenRequest {
  readonly platform: PushPlatform;
  readonly token: string;
  readonly topic: string | undefined;
}

const PROVIDER_NAMES: Record<PushPlatform, string> = { apns: 'APNs', fcm: 'FCM', webpush: 'Web Push' };
/** APNs device tokens are hex (32 bytes today; Apple says they may grow). */
const APNS_TOKEN = /^[0-9a-f]{64,200}$/i;
/** FCM registration tokens: URL-safe base64 with ':' and '-'. */
const FCM_TOKEN = /^[A-Za-z0-9_:.-]{20,4096}$/;
const BUNDLE_ID = /^[A-Za-z0-9.-]{1,200}$/;

/**
 * A device's push registration: where to reach it while it is offline. One
 * token belongs to one device; registering it again elsewhere (a new login on
 * the same phone) moves it.
 */
export class PushTokenService {
  constructor(private readonly deps: PushTokenDeps) {}

  async register(principal: Principal, request: PushTokenRequest): Promise<PushRegistration> {
    if (!this.deps.enabled[request.platform]) {
      throw new ChatError(
        'invalid_field',
        `this server sends no ${PROVIDER_NAMES[request.platform]} notifications: ${request.platform === 'webpush' ? 'webpush.enabled is false' : `its [${request.platform}] configuration is empty`}`,
        { field: 'platform' },
      );
    }
    if (request.platform === 'webpush') return this.registerWebPush(principal, request);
    const apns = request.platform === 'apns';
    if (!(apns ? APNS_TOKEN : FCM_TOKEN).test(request.token)) {
      throw new ChatError('invalid_field', apns ? 'an APNs device token is 64 or more hex digits' : 'that is not an FCM registration token', {
        field: 'token',
      });
    }
    if (request.topic !== undefined && (!apns || !BUNDLE_ID.test(request.topic))) {
      throw new ChatError('invalid_field', apns ? 'topic must be the app\'s bundle id, e.g. "org.example.chat"' : 'topic is for APNs only', {
        field: 'topic',
      });
    }
    const registration = { platform: request.platform, token: apns ? request.token.toLowerCase() : request.token, topic: request.topic ?? null };
    await this.deps.storage.registerPushToken(principal.deviceId, registration);
    return registration;
  }

  private async registerWebPush(principal: Principal, request: PushTokenRequest): Promise<PushRegistration> {
    if (request.topic !== undefined) throw new ChatError('invalid_field', 'topic is for APNs only', { field: 'topic' });
    const registration = { platform: 'webpush' as const, token: parseWebPushSubscription(request.token, this.deps.webPushHosts), topic: null };
    await this.deps.storage.registerPushToken(principal.deviceId, registration);
    return registration;
  }

  unregister(principal: Principal): Promise<void> {
    return this.deps.storage.unregisterPushToken(principal.deviceId);
  }

  registration(principal: Principal): Promise<PushRegistration | undefined> {
    return this.deps.storage.pushRegistration(principal.deviceId);
  }
}
