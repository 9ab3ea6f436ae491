import { ChatError } from '../../errors.js';
import { parseId, readOptionalBoolean, readOptionalString, readString } from '../../protocol/fields.js';
import type { AccountService } from '../../services/accounts.js';
import type { Principal } from '../../services/types.js';
import { readJsonObject } from './body.js';
import { json, noContent } from './respond.js';
import type { Router } from './router.js';
import { userJson } from '../../protocol/encode.js';
import { deviceJson } from './wire.js';

/** Type-level bound on free-text fields; the services apply the real rules. */
const TEXT = { max: 1024 } as const;

/** The device a request's "Authorization: Bearer <token>" names, or unauthorized. `address` is for the audit log. */
export function bearerAuthenticator(accounts: AccountService): (request: Request, address?: string) => Promise<Principal> {
  return async (request, address) => {
    const header = request.headers.get('authorization') ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match?.[1]) throw new ChatError('unauthorized', 'send the device token as "Authorization: Bearer <token>" (from POST /v1/login)');
    return accounts.authenticate(match[1], address);
  };
}

/** The account and device endpoints under /v1. */
export function addAccountRoutes(router: Router, accounts: AccountService): void {
  const authenticate = bearerAuthenticator(accounts);

  router.add('POST', '/v1/register', async (request, context) => {
    const body = await readJsonObject(request);
    const user = await accounts.register(
      {
        username: readString(body, 'username', TEXT),
        password: readString(body, 'password', TEXT),
        displayName: readOptionalString(body, 'display_name', TEXT),
        invite: readOptionalString(body, 'invite', TEXT),
      },
      context.clientAddress,
    );
    return json(201, { user: userJson(user) });
  });

  router.add('POST', '/v1/login', async (request, context) => {
    const body = await readJsonObject(request);
    const result = await accounts.login(
      {
        username: readString(body, 'username', TEXT),
        password: readString(body, 'password', TEXT),
        deviceName: readString(body, 'device_name', TEXT),
        platform: readString(body, 'platform', TEXT),
      },
      context.clientAddress,
    );
    return json(201, { user: userJson(result.user), device: deviceJson(result.device), token: result.token });
  });

  router.add('POST', '/v1/logout', async (request, context) => {
    await accounts.logout(await authenticate(request, context.clientAddress), context.clientAddress);
    return noContent();
  });

  router.add('GET', '/v1/me', async (request, context) => {
    const principal = await authenticate(request, context.clientAddress);
    return json(200, { user: userJson(principal.user), device_id: principal.deviceId });
  });

  router.add('PATCH', '/v1/me', async (request, context) => {
    const principal = await authenticate(request, context.clientAddress);
    const body = await readJsonObject(request);
    const user = await accounts.setDisplayName(principal, readString(body, 'display_name', TEXT));
    return json(200, { user: userJson(user), device_id: principal.deviceId });
  });

  router.add('POST', '/v1/me/password', async (request, context) => {
    const principal = await authenticate(request, context.clientAddress);
    const body = await readJsonObject(request);
    const result = await accounts.changePassword(principal, {
      currentPassword: readString(body, 'current_password', TEXT),
      newPassword: readString(body, 'new_password', TEXT),
      revokeOtherDevices: readOptionalBoolean(body, 'revoke_other_devices') ?? true,
    }, context.clientAddress);
    return json(200, { revoked_devices: result.revokedDevices });
  });

  router.add('GET', '/v1/devices', async (request, context) => {
    const principal = await authenticate(request, context.clientAddress);
    const devices = (await accounts.listDevices(principal)).map((device) => ({ ...deviceJson(device), current: device.id === principal.deviceId }));
    return json(200, { devices });
  });

  router.add('DELETE', '/v1/devices/:id', async (request, context) => {
    const principal = await authenticate(request, context.clientAddress);
    await accounts.revokeDevice(principal, parseId(context.params.id, 'device id'), context.clientAddress);
    return noContent();
  });
}
