import type { SignedOut, TokenState } from '../ports/token.js';
import type { Sql } from './sql.js';

/**
 * Inside a unit acting for devices (every unit with a `signed_out` outcome):
 * locks their rows, in id order so that two units locking the same devices
 * cannot deadlock, and reports each one's token state. The lock is what makes
 * "a revocation that committed first wins" hold across nodes: a revocation
 * (which updates the device row, also when it disables or deletes the user)
 * waits for this unit's commit, or this unit waits for the revocation's and
 * then sees it. FOR NO KEY UPDATE serialises the units of one device (they
 * check bounds and counters the next one must see) without blocking rows
 * inserted elsewhere that merely reference the device.
 */
export async function lockDevices(sql: Sql, deviceIds: readonly number[]): Promise<Map<number, LockedDevice>> {
  const { rows } = await sql.query<{ id: number; user_id: number; revoked: boolean; disabled: boolean; deleted: boolean; approved: boolean }>(
    `SELECT d.id, d.user_id, d.revoked_at IS NOT NULL AS revoked, u.disabled, u.deleted_at IS NOT NULL AS deleted,
            d.key_counter IS NOT NULL AND d.account_signature IS NOT NULL AS approved
       FROM devices d JOIN users u ON u.id = d.user_id
      WHERE d.id = ANY($1::bigint[])
      ORDER BY d.id
        FOR NO KEY UPDATE OF d`,
    [[...new Set(deviceIds)]],
  );
  return new Map(
    rows.map((row) => [row.id, { userId: row.user_id, approved: row.approved, state: { revoked: row.revoked, disabled: row.disabled, deleted: row.deleted } }]),
  );
}

/** A device as lockDevices found it, locked until the unit's commit. */
export interface LockedDevice {
  readonly userId: number;
  /** It holds a certificate of its keys (it published protocol-2 keys and was approved). */
  readonly approved: boolean;
  readonly state: TokenState;
}

/** The `signed_out` outcome when the device's token (as lockDevices found it) no longer works, else undefined. */
export function signedOutOf(device: LockedDevice | undefined): SignedOut | undefined {
  const state = device?.state;
  return state && !state.revoked && !state.disabled && !state.deleted ? undefined : { kind: 'signed_out', state };
}

/** Locks one device (lockDevices) and answers `signed_out` if its token no longer works. */
export async function lockSignedIn(sql: Sql, deviceId: number): Promise<SignedOut | undefined> {
  return signedOutOf((await lockDevices(sql, [deviceId])).get(deviceId));
}
