import { ChatError } from '../errors.js';
import type { AccountEvent } from '../storage/ports/account-events.js';
import type { TokenState } from '../storage/ports/token.js';
import type { Revocation, RevocationReason } from './types.js';

export function toRevocation(event: AccountEvent): Revocation {
  return { id: event.id, userId: event.userId, deviceId: event.deviceId, reason: event.reason };
}

/** What a client is told (the close frame's reason, the error's message) when its token stopped working. */
export function revocationMessage(reason: RevocationReason): string {
  switch (reason) {
    case 'device_revoked':
      return 'this device was logged out; log in again';
    case 'password_changed':
      return 'the password was changed; log in again';
    case 'user_disabled':
      return 'this account was disabled; ask the server admin';
    case 'user_deleted':
      return 'this account was deleted';
  }
}

/**
 * Refuses a request of a device whose token no longer works (a device that
 * does not exist counts as revoked): unauthorized, or account_disabled, as
 * authentication would answer.
 */
export function assertSignedIn(state: TokenState | undefined): void {
  // The account's state first: deleting or disabling a user may revoke the devices too.
  if (state?.deleted) throw new ChatError('unauthorized', revocationMessage('user_deleted'));
  if (state?.disabled) throw new ChatError('account_disabled', revocationMessage('user_disabled'));
  if (!state || state.revoked) throw new ChatError('unauthorized', revocationMessage('device_revoked'));
}

/** assertSignedIn for a unit's `signed_out` outcome: the state it found makes it throw. */
export function refuseSignedOut(state: TokenState | undefined): never {
  assertSignedIn(state);
  // A unit reports signed_out only for a token that does not work: treat a disagreement as revoked.
  throw new ChatError('unauthorized', revocationMessage('device_revoked'));
}

export function isSignedIn(state: TokenState | undefined): boolean {
  return state !== undefined && !state.revoked && !state.deleted && !state.disabled;
}
