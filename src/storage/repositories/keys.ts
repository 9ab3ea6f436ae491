import type { Db } from '../database.js';
import type { NewDeviceKeys } from '../ports/keys.js';

/** A device's published public keys (base64), as protocol 2 knows them. */
export interface DeviceKeysRow {
  readonly user_id: number;
  readonly device_id: number;
  readonly enc_key: string;
  readonly sign_key: string;
  readonly key_counter: number;
  readonly key_signature: string;
  /** The account key's signature of the device's certificate; null while the device is pending. */
  readonly account_signature: string | null;
  readonly revoked: 0 | 1;
}

export type { NewDeviceKeys };

/** A user's account key (base64) and its self-signature. */
export interface AccountKeyRow {
  readonly user_id: number;
  readonly account_key: string;
  readonly signature: string;
}

// Keys published under protocol 1 have no counter: they are no keys to protocol 2 (migration 0012).
const KEY_COLUMNS = `user_id, id AS device_id, enc_key, sign_key, key_counter, key_signature, account_signature,
  (revoked_at IS NOT NULL) AS revoked`;

/** Devices' and accounts' public keys for end-to-end encryption, and who may see them. */
export class KeysRepository {
  private readonly publishStatement;
  private readonly certifyStatement;
  private readonly ofDeviceStatement;
  private readonly signKeyOfStatement;
  private readonly signKeyUsedStatement;
  private readonly ofUsersStatement;
  private readonly revokedOfUserStatement;
  private readonly threadDevicesStatement;
  private readonly accountOfStatement;
  private readonly accountsOfStatement;
  private readonly setAccountStatement;
  private readonly uncertifyAllStatement;

  constructor(db: Db) {
    this.publishStatement = db.prepare<[string, string, number, string, string | null, number, number]>(
      `UPDATE devices SET enc_key = ?, sign_key = ?, key_counter = ?, key_signature = ?, account_signature = ?, keys_at = ?
        WHERE id = ?`,
    );
    this.certifyStatement = db.prepare<[string, number]>('UPDATE devices SET account_signature = ? WHERE id = ?');
    this.ofDeviceStatement = db.prepare<[number], DeviceKeysRow>(`SELECT ${KEY_COLUMNS} FROM devices WHERE id = ? AND key_counter IS NOT NULL`);
    this.signKeyOfStatement = db.prepare<[number], string | null>('SELECT sign_key FROM devices WHERE id = ?').pluck();
    this.signKeyUsedStatement = db.prepare<[string, number], number>('SELECT id FROM devices WHERE sign_key = ? AND id <> ? LIMIT 1').pluck();
    this.ofUsersStatement = db.prepare<[string], DeviceKeysRow>(
      `SELECT ${KEY_COLUMNS} FROM devices
        WHERE user_id IN (SELECT value FROM json_each(?)) AND key_counter IS NOT NULL
        ORDER BY user_id, id`,
    );
    this.revokedOfUserStatement = db.prepare<[number], DeviceKeysRow>(
      `SELECT ${KEY_COLUMNS} FROM devices WHERE user_id = ? AND key_counter IS NOT NULL AND revoked_at IS NOT NULL ORDER BY id`,
    );
    // The devices an encrypted message of the thread must carry a sealed key for: approved ones only.
    this.threadDevicesStatement = db
      .prepare<[number], number>(
        `SELECT d.id FROM thread_members m JOIN devices d ON d.user_id = m.user_id
          WHERE m.thread_id = ? AND m.left_seq IS NULL AND d.revoked_at IS NULL
            AND d.key_counter IS NOT NULL AND d.account_signature IS NOT NULL
          ORDER BY d.id`,
      )
      .pluck();
    this.accountOfStatement = db.prepare<[number], AccountKeyRow>('SELECT user_id, account_key, signature FROM account_keys WHERE user_id = ?');
    this.accountsOfStatement = db.prepare<[string], AccountKeyRow>(
      'SELECT user_id, account_key, signature FROM account_keys WHERE user_id IN (SELECT value FROM json_each(?)) ORDER BY user_id',
    );
    this.setAccountStatement = db.prepare<[number, string, string, number]>(
      `INSERT INTO account_keys (user_id, account_key, signature, created_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (user_id) DO UPDATE SET account_key = excluded.account_key, signature = excluded.signature, created_at = excluded.created_at`,
    );
    this.uncertifyAllStatement = db
      .prepare<[number], number>('UPDATE devices SET account_signature = NULL WHERE user_id = ? AND account_signature IS NOT NULL RETURNING id')
      .pluck();
  }

  publish(deviceId: number, keys: NewDeviceKeys, now: number): void {
    this.publishStatement.run(keys.encKey, keys.signKey, keys.counter, keys.signature, keys.accountSignature, now, deviceId);
  }

  /** Stores the account key's signature of the device's certificate: the device is approved. */
  certify(deviceId: number, accountSignature: string): void {
    this.certifyStatement.run(accountSignature, deviceId);
  }

  /** The device's protocol-2 keys (revoked devices too), if it published some. */
  ofDevice(deviceId: number): DeviceKeysRow | undefined {
    return this.ofDeviceStatement.get(deviceId);
  }

  /** The identity key the device published under either protocol, if any. */
  signKeyOf(deviceId: number): string | undefined {
    return this.signKeyOfStatement.get(deviceId) ?? undefined;
  }

  /** Another device (of any user) that published this identity key, if one did. */
  deviceWithSignKey(signKey: string, exceptDeviceId: number): number | undefined {
    return this.signKeyUsedStatement.get(signKey, exceptDeviceId);
  }

  /** The keys of every device (revoked ones included) of these users that published protocol-2 keys. */
  ofUsers(userIds: readonly number[]): DeviceKeysRow[] {
    return this.ofUsersStatement.all(JSON.stringify(userIds));
  }

  /** The user's revoked devices that had published keys. */
  revokedOfUser(userId: number): DeviceKeysRow[] {
    return this.revokedOfUserStatement.all(userId);
  }

  /** Every current, approved device with keys of every current member of the thread. */
  threadDevices(threadId: number): number[] {
    return this.threadDevicesStatement.all(threadId);
  }

  accountOf(userId: number): AccountKeyRow | undefined {
    return this.accountOfStatement.get(userId);
  }

  accountsOf(userIds: readonly number[]): AccountKeyRow[] {
    return this.accountsOfStatement.all(JSON.stringify(userIds));
  }

  /** Stores the user's account key, replacing any (the caller decides whether it may). */
  setAccount(userId: number, accountKey: string, signature: string, now: number): void {
    this.setAccountStatement.run(userId, accountKey, signature, now);
  }

  /** Every device of the user loses its approval (an account key reset). Returns their ids. */
  uncertifyAll(userId: number): number[] {
    return this.uncertifyAllStatement.all(userId);
  }
}
