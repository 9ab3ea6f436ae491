import { readEnum, readOptionalString, readString } from '../../protocol/fields.js';
import type { PushTokenService } from '../../services/push-tokens.js';
import type { Principal } from '../../services/types.js';
import { readJsonObject } from './body.js';
import { ChatError } from '../../errors.js';
import { errorResponse, json, noContent } from './respond.js';
import type { Router } from './router.js';

/**
 * The calling device's push registration: PUT to register or replace, DELETE to remove, GET to read.
 * And the server's VAPID public key (`webPushKey`; undefined: Web Push is off), which a browser needs
 * before it can subscribe, so before it has logged in: no authentication, and nothing secret in it.
 */
export function addPushRoutes(
  router: Router,
  authenticate: (request: Request, address?: string) => Promise<Principal>,
  pushTokens: PushTokenService,
  webPushKey: string | undefined,
): void {
  router.add('GET', '/v1/push/webpush', () =>
    webPushKey === undefined
      ? errorResponse(new ChatError('not_found', 'this server sends no Web Push notifications (webpush.enabled is false)'))
      : json(200, { public_key: webPushKey }),
  );

  router.add('PUT', '/v1/me/push', async (request, context) => {
    const principal = await authenticate(request, context.clientAddress);
    const body = await readJsonObject(request);
    const registration = await pushTokens.register(principal, {
      platform: readEnum(body, 'platform', ['apns', 'fcm', 'webpush'] as const),
      token: readString(body, 'token', { max: 4096 }),
      topic: readOptionalString(body, 'topic', { max: 200 }),
    });
    return json(200, { push: { platform: registration.platform, topic: registration.topic } });
  });

  router.add('GET', '/v1/me/push', async (request, context) => {
    const registration = await pushTokens.registration(await authenticate(request, context.clientAddress));
    return json(200, { push: registration ? { platform: registration.platform, topic: registration.topic } : null });
  });

  router.add('DELETE', '/v1/me/push', async (request, context) => {
    await pushTokens.unregister(await authenticate(request, context.clientAddress));
    return noContent();
  });
}
