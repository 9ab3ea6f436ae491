import type { Db } from '../database.js';

/** A device's published public keys (base64). */
export interface DeviceKeysRow {
  readonly user_id: number;
  readonly device_id: number;
  readonly enc_key: string;
  readonly sign_key: string;
  readonly key_signature: string;
}

/** Devices' public keys for end-to-end encryption, and who may see them. */
export class KeysRepository {
  private readonly publishStatement;
  private readonly ofDeviceStatement;
  private readonly ofUsersStatement;
  private readonly threadDevicesStatement;

  constructor(db: Db) {
    this.publishStatement = db.prepare<[string, string, string, number, number]>(
      'UPDATE devices SET enc_key = ?, sign_key = ?, key_signature = ?, keys_at = ? WHERE id = ?',
    );
    this.ofDeviceStatement = db.prepare<[number], DeviceKeysRow>(
      `SELECT user_id, id AS device_id, enc_key, sign_key, key_signature FROM devices
        WHERE id = ? AND sign_key IS NOT NULL AND revoked_at IS NULL`,
    );
    this.ofUsersStatement = db.prepare<[string], DeviceKeysRow>(
      `SELECT user_id, id AS device_id, enc_key, sign_key, key_signature FROM devices
        WHERE user_id IN (SELECT value FROM json_each(?)) AND sign_key IS NOT NULL AND revoked_at IS NULL
        ORDER BY user_id, id`,
    );
    // The devices an encrypted message of the thread must carry a sealed key for.
    this.threadDevicesStatement = db
      .prepare<[number], number>(
        `SELECT d.id FROM thread_members m JOIN devices d ON d.user_id = m.user_id
          WHERE m.thread_id = ? AND m.left_seq IS NULL AND d.revoked_at IS NULL AND d.sign_key IS NOT NULL
          ORDER BY d.id`,
      )
      .pluck();
  }

  publish(deviceId: number, keys: { encKey: string; signKey: string; signature: string }, now: number): void {
    this.publishStatement.run(keys.encKey, keys.signKey, keys.signature, now, deviceId);
  }

  ofDevice(deviceId: number): DeviceKeysRow | undefined {
    return this.ofDeviceStatement.get(deviceId);
  }

  /** The keys of every current device of these users that published some. */
  ofUsers(userIds: readonly number[]): DeviceKeysRow[] {
    return this.ofUsersStatement.all(JSON.stringify(userIds));
  }

  /** Every current device with keys of every current member of the thread. */
  threadDevices(threadId: number): number[] {
    return this.threadDevicesStatement.all(threadId);
  }
}
