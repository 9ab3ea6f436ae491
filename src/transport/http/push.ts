import { readEnum, readOptionalString, readString } from '../../protocol/fields.js';
import type { PushTokenService } from '../../services/push-tokens.js';
import type { Principal } from '../../services/types.js';
import { readJsonObject } from './body.js';
import { json, noContent } from './respond.js';
import type { Router } from './router.js';

/** The calling device's push registration: PUT to register or replace, DELETE to remove, GET to read. */
export function addPushRoutes(router: Router, authenticate: (request: Request, address?: string) => Promise<Principal>, pushTokens: PushTokenService): void {
  router.add('PUT', '/v1/me/push', async (request, context) => {
    const principal = await authenticate(request, context.clientAddress);
    const body = await readJsonObject(request);
    const registration = await pushTokens.register(principal, {
      platform: readEnum(body, 'platform', ['apns', 'fcm'] as const),
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
