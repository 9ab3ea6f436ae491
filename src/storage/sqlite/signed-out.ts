import type { SignedOut } from '../ports/keys.js';
import type { Store } from '../store.js';

/** Inside a unit: the `signed_out` outcome when the acting device's token no longer works, else undefined. */
export function signedOut(store: Store, deviceId: number): SignedOut | undefined {
  const state = store.devices.tokenState(deviceId);
  return state && !state.revoked && !state.disabled && !state.deleted ? undefined : { kind: 'signed_out', state };
}
