import type { AccountEvent, RevocationReason } from '../ports/account-events.js';
import type { Store } from '../store.js';
import { toAccountEvent } from './rows.js';

/**
 * Records revocations as account events, inside the unit that revokes (call
 * it in the transaction function): a running server learns of them from the
 * database whichever process made them. `deviceIds` null: every device of the user.
 */
export function recordRevocationEvents(
  store: Store,
  change: { readonly userId: number; readonly deviceIds: readonly number[] | null; readonly reason: RevocationReason; readonly now: number },
): AccountEvent[] {
  const targets = change.deviceIds ?? [null];
  return store.accountEvents
    .record(targets.map((deviceId) => ({ user_id: change.userId, device_id: deviceId, reason: change.reason, created_at: change.now })))
    .map(toAccountEvent);
}
