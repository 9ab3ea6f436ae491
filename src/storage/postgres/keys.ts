import type {
  ApproveDeviceInput,
  ApproveOutcome,
  Certification,
  KeysStorage,
  NewDeviceKeys,
  PublishAccountOutcome,
  PublishKeysOutcome,
  StoredAccountKey,
  StoredDeviceKeys,
} from '../ports/keys.js';
import type { PgDatabase } from './database.js';
import { lockDevices, lockSignedIn, signedOutOf } from './device-lock.js';
import type { Sql } from './sql.js';

interface DeviceKeysRow {
  readonly user_id: number;
  readonly device_id: number;
  readonly enc_key: string;
  readonly sign_key: string;
  readonly key_counter: number;
  readonly key_signature: string;
  readonly account_signature: string | null;
  readonly revoked: boolean;
  readonly [column: string]: unknown;
}

interface AccountKeyRow {
  readonly user_id: number;
  readonly account_key: string;
  readonly signature: string;
  readonly [column: string]: unknown;
}

// Keys published under protocol 1 have no counter: they are no keys to protocol 2 (SQLite's migration 0012).
const KEY_COLUMNS = `user_id, id AS device_id, enc_key, sign_key, key_counter, key_signature, account_signature, (revoked_at IS NOT NULL) AS revoked`;

/** Namespace of the advisory locks on identity keys (the other key is the sign_key's hash). */
const SIGN_KEY_LOCKS = 0x6b657973;

/**
 * KeysStorage on PostgreSQL. Every unit locks the rows of the devices it acts
 * for and on first (device-lock.ts, id order), then reads the account key
 * FOR SHARE: so the identity rules hold across nodes as they do under
 * SQLite's single writer — one user's key units run one after another, and a
 * reset waits for a certification checked against the key it replaces (and
 * then clears it). Locks are always taken devices first, account key second.
 */
export class PostgresKeysStorage implements KeysStorage {
  constructor(private readonly db: PgDatabase) {}

  async deviceKeys(deviceId: number): Promise<StoredDeviceKeys | undefined> {
    const row = await ofDevice(this.db.read, deviceId);
    return row && toStoredDeviceKeys(row);
  }

  async accountKey(userId: number): Promise<StoredAccountKey | undefined> {
    const { rows } = await this.db.read.query<AccountKeyRow>('SELECT user_id, account_key, signature FROM account_keys WHERE user_id = $1', [userId]);
    return rows[0] && toStoredAccountKey(rows[0]);
  }

  keysOfUsers(userIds: readonly number[]): Promise<{ accounts: StoredAccountKey[]; devices: StoredDeviceKeys[] }> {
    const ids = [...userIds];
    return this.db.snapshot(async (sql) => {
      const accounts = await sql.query<AccountKeyRow>('SELECT user_id, account_key, signature FROM account_keys WHERE user_id = ANY($1::bigint[]) ORDER BY user_id', [ids]);
      const devices = await sql.query<DeviceKeysRow>(
        `SELECT ${KEY_COLUMNS} FROM devices WHERE user_id = ANY($1::bigint[]) AND key_counter IS NOT NULL ORDER BY user_id, id`,
        [ids],
      );
      return { accounts: accounts.rows.map(toStoredAccountKey), devices: devices.rows.map(toStoredDeviceKeys) };
    });
  }

  async revokedDeviceKeys(userId: number): Promise<StoredDeviceKeys[]> {
    const { rows } = await this.db.read.query<DeviceKeysRow>(
      `SELECT ${KEY_COLUMNS} FROM devices WHERE user_id = $1 AND key_counter IS NOT NULL AND revoked_at IS NOT NULL ORDER BY id`,
      [userId],
    );
    return rows.map(toStoredDeviceKeys);
  }

  async usersEverSharingThreads(userId: number): Promise<number[]> {
    const { rows } = await this.db.read.query<{ user_id: number }>(
      `SELECT DISTINCT o.user_id FROM thread_members m JOIN thread_members o ON o.thread_id = m.thread_id
        WHERE m.user_id = $1 AND o.user_id <> $1 ORDER BY o.user_id`,
      [userId],
    );
    return rows.map((row) => row.user_id);
  }

  publishDeviceKeys(input: { userId: number; deviceId: number; keys: Omit<NewDeviceKeys, 'accountSignature'>; certification: Certification | undefined; now: number }): Promise<PublishKeysOutcome> {
    const { keys, certification } = input;
    return this.db.writes.submit(async (sql): Promise<PublishKeysOutcome> => {
      const out = await lockSignedIn(sql, input.deviceId);
      if (out) return out;
      // The identity key published under either protocol, and the protocol-2 keys if any (the row is locked: they stay so).
      const { rows } = await sql.query<Omit<DeviceKeysRow, 'sign_key' | 'key_counter'> & { sign_key: string | null; key_counter: number | null }>(
        `SELECT ${KEY_COLUMNS} FROM devices WHERE id = $1`,
        [input.deviceId],
      );
      const signKey = rows[0]?.sign_key ?? undefined;
      const before = rows[0] && rows[0].key_counter !== null ? (rows[0] as DeviceKeysRow) : undefined;
      if (signKey !== undefined && signKey !== keys.signKey) return { kind: 'refused', reason: 'sign_key_changed' };
      // Two devices claiming one new identity key on two nodes at once: the second waits here, then sees the first's.
      await sql.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [SIGN_KEY_LOCKS, keys.signKey]);
      const taken = await sql.query('SELECT 1 FROM devices WHERE sign_key = $1 AND id <> $2 LIMIT 1', [keys.signKey, input.deviceId]);
      if (taken.rowCount > 0) return { kind: 'refused', reason: 'sign_key_taken' };
      if (before && keys.counter < before.key_counter) return { kind: 'refused', reason: 'counter_lower', storedCounter: before.key_counter };
      const sameKeys = before !== undefined && keys.counter === before.key_counter;
      if (sameKeys && keys.encKey !== before.enc_key) return { kind: 'refused', reason: 'enc_key_needs_higher_counter', storedCounter: before.key_counter };
      if (certification) {
        // The account key read before the signature check must still be the user's: a reset in between voids it.
        const current = await lockedAccountKey(sql, input.userId);
        if (current === undefined) return { kind: 'refused', reason: 'no_account_key' };
        if (!certification.verified || current !== certification.accountKey) return { kind: 'refused', reason: 'not_certified' };
      }
      // The same keys keep their approval when none is given; new keys (a rotation) are pending until certified again.
      const accountSignature = certification?.accountSignature ?? (sameKeys ? before.account_signature : null);
      if (sameKeys && before.key_signature === keys.signature && before.account_signature === accountSignature) return { kind: 'unchanged' };
      const stored = await sql.query<DeviceKeysRow>(
        `UPDATE devices SET enc_key = $1, sign_key = $2, key_counter = $3, key_signature = $4, account_signature = $5, keys_at = $6
          WHERE id = $7 RETURNING ${KEY_COLUMNS}`,
        [keys.encKey, keys.signKey, keys.counter, keys.signature, accountSignature, input.now, input.deviceId],
      );
      return { kind: 'stored', keys: toStoredDeviceKeys(stored.rows[0] as DeviceKeysRow) };
    });
  }

  publishAccountKey(input: { userId: number; deviceId: number; accountKey: string; signature: string; reset: boolean; passwordConfirmed: boolean; now: number }): Promise<PublishAccountOutcome> {
    return this.db.writes.submit(async (sql): Promise<PublishAccountOutcome> => {
      // Every device of the user, not only the acting one: a reset uncertifies them all, and two first
      // publications on two nodes must not both find no key.
      const { rows: devices } = await sql.query<{ id: number }>('SELECT id FROM devices WHERE user_id = $1', [input.userId]);
      const states = await lockDevices(sql, [input.deviceId, ...devices.map((row) => row.id)]);
      const out = signedOutOf(states.get(input.deviceId));
      if (out) return out;
      const before = await lockedAccountKey(sql, input.userId);
      if (before === input.accountKey) return { kind: 'unchanged' };
      if (before !== undefined && !input.reset) return { kind: 'refused', reason: 'other_account_key' };
      // A reset clears every certificate, so a stored one is under the current key.
      if (before !== undefined && !input.passwordConfirmed && (await ofDevice(sql, input.deviceId))?.account_signature == null) return { kind: 'refused', reason: 'not_approved' };
      await sql.query(
        `INSERT INTO account_keys (user_id, account_key, signature, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id) DO UPDATE SET account_key = excluded.account_key, signature = excluded.signature, created_at = excluded.created_at`,
        [input.userId, input.accountKey, input.signature, input.now],
      );
      if (before === undefined) return { kind: 'stored', reset: false, uncertified: [] };
      const uncertified = await sql.query<DeviceKeysRow>(
        `UPDATE devices SET account_signature = NULL WHERE user_id = $1 AND account_signature IS NOT NULL RETURNING ${KEY_COLUMNS}`,
        [input.userId],
      );
      const keys = uncertified.rows.filter((row) => row.key_counter !== null).sort((a, b) => a.device_id - b.device_id);
      return { kind: 'stored', reset: true, uncertified: keys.map(toStoredDeviceKeys) };
    });
  }

  approveDevice(input: ApproveDeviceInput): Promise<ApproveOutcome> {
    return this.db.writes.submit(async (sql): Promise<ApproveOutcome> => {
      const states = await lockDevices(sql, [input.deviceId, input.target.deviceId]);
      const out = signedOutOf(states.get(input.deviceId));
      if (out) return out;
      const now = await ofDevice(sql, input.target.deviceId);
      if (!now || now.user_id !== input.userId || now.revoked) return { kind: 'refused', reason: 'no_device' };
      // The device may have rotated, or the account been reset, while the signature was checked.
      const unchanged = now.key_counter === input.target.counter && now.enc_key === input.target.encKey && (await lockedAccountKey(sql, input.userId)) === input.accountKey;
      if (!input.verified || !unchanged) return { kind: 'refused', reason: 'not_certified', storedCounter: now.key_counter };
      if (now.account_signature === input.accountSignature) return { kind: 'unchanged' };
      const stored = await sql.query<DeviceKeysRow>(`UPDATE devices SET account_signature = $1 WHERE id = $2 RETURNING ${KEY_COLUMNS}`, [
        input.accountSignature,
        input.target.deviceId,
      ]);
      return { kind: 'stored', keys: toStoredDeviceKeys(stored.rows[0] as DeviceKeysRow) };
    });
  }
}

/** The device's protocol-2 keys (revoked devices too), if it published some. */
async function ofDevice(sql: Sql, deviceId: number): Promise<DeviceKeysRow | undefined> {
  const { rows } = await sql.query<DeviceKeysRow>(`SELECT ${KEY_COLUMNS} FROM devices WHERE id = $1 AND key_counter IS NOT NULL`, [deviceId]);
  return rows[0];
}

/** Inside a unit: the user's account key, its row held (FOR SHARE) until commit so that a reset elsewhere waits. */
async function lockedAccountKey(sql: Sql, userId: number): Promise<string | undefined> {
  const { rows } = await sql.query<{ account_key: string }>('SELECT account_key FROM account_keys WHERE user_id = $1 FOR SHARE', [userId]);
  return rows[0]?.account_key;
}

function toStoredDeviceKeys(row: DeviceKeysRow): StoredDeviceKeys {
  return {
    userId: row.user_id,
    deviceId: row.device_id,
    encKey: row.enc_key,
    signKey: row.sign_key,
    counter: row.key_counter,
    signature: row.key_signature,
    accountSignature: row.account_signature,
    revoked: row.revoked,
  };
}

function toStoredAccountKey(row: AccountKeyRow): StoredAccountKey {
  return { userId: row.user_id, accountKey: row.account_key, signature: row.signature };
}
