import type { SignedOut } from '../ports/token.js';
import type { Store } from '../store.js';

/** Inside a unit (every unit acting for a device): the `signed_out` outcome when the device's token no longer works, else undefined. */
export function signedOut(store: Pick<Store, 'devices'>, deviceId: number): SignedOut | undefined {
  const state = store.devices.tokenState(deviceId);
  return state && !state.revoked && !state.disabled && !state.deleted ? undefined : { kind: 'signed_out', state };
}
