import type { Db } from '../database.js';
import type { TokenState } from '../ports/token.js';
import type { UserRow } from './users.js';

export interface DeviceRow {
  readonly id: number;
  readonly user_id: number;
  readonly name: string;
  readonly platform: string;
  readonly created_at: number;
  readonly last_seen_at: number | null;
  readonly revoked_at: number | null;
}

export interface NewDevice {
  readonly userId: number;
  readonly name: string;
  readonly platform: string;
  readonly tokenHash: Buffer;
  readonly now: number;
}

/** A device found by its token, with its user, for authentication. */
export interface DeviceWithUser {
  readonly device: DeviceRow;
  readonly user: Pick<UserRow, 'id' | 'username' | 'display_name' | 'disabled' | 'deleted_at'>;
}

const COLUMNS = 'd.id, d.user_id, d.name, d.platform, d.created_at, d.last_seen_at, d.revoked_at';

export class DevicesRepository {
  private readonly insertStatement;
  private readonly byTokenHash;
  private readonly byId;
  private readonly byUser;
  private readonly revokeStatement;
  private readonly revokeForUserStatement;
  private readonly touchStatement;
  private readonly tokenStateStatement;

  constructor(db: Db) {
    this.insertStatement = db.prepare<[number, string, string, Buffer, number, number]>(
      'INSERT INTO devices (user_id, name, platform, token_hash, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.byTokenHash = db.prepare<[Buffer], DeviceRow & { username: string; display_name: string; disabled: 0 | 1; deleted_at: number | null }>(
      `SELECT ${COLUMNS}, u.username, u.display_name, u.disabled, u.deleted_at
         FROM devices d JOIN users u ON u.id = d.user_id
        WHERE d.token_hash = ? AND d.revoked_at IS NULL`,
    );
    this.byId = db.prepare<[number], DeviceRow>(`SELECT ${COLUMNS} FROM devices d WHERE d.id = ?`);
    this.byUser = db.prepare<[number, 0 | 1], DeviceRow>(
      `SELECT ${COLUMNS} FROM devices d WHERE d.user_id = ? AND (? = 1 OR d.revoked_at IS NULL) ORDER BY d.id`,
    );
    this.revokeStatement = db.prepare<[number, number]>(
      'UPDATE devices SET revoked_at = ?, token_hash = NULL, push_platform = NULL, push_token = NULL, push_topic = NULL WHERE id = ? AND revoked_at IS NULL',
    );
    this.revokeForUserStatement = db.prepare<[number, number, number]>(
      `UPDATE devices SET revoked_at = ?, token_hash = NULL, push_platform = NULL, push_token = NULL, push_topic = NULL
        WHERE user_id = ? AND id <> ? AND revoked_at IS NULL RETURNING id`,
    );
    this.touchStatement = db.prepare<[number, number]>('UPDATE devices SET last_seen_at = ? WHERE id = ?');
    // One integer rather than a row: better-sqlite3 makes a row object at a cost (about 1 µs here) this read, run for every message, need not pay.
    this.tokenStateStatement = db
      .prepare<[number], number>(
        `SELECT (d.revoked_at IS NOT NULL) | (u.disabled << 1) | ((u.deleted_at IS NOT NULL) << 2)
           FROM devices d JOIN users u ON u.id = d.user_id WHERE d.id = ?`,
      )
      .pluck();
  }

  insert(device: NewDevice): number {
    const result = this.insertStatement.run(device.userId, device.name, device.platform, device.tokenHash, device.now, device.now);
    return Number(result.lastInsertRowid);
  }

  /** The live (not revoked) device holding this token hash. */
  findByTokenHash(tokenHash: Buffer): DeviceWithUser | undefined {
    const row = this.byTokenHash.get(tokenHash);
    if (!row) return undefined;
    const { username, display_name, disabled, deleted_at, ...device } = row;
    return { device, user: { id: device.user_id, username, display_name, disabled, deleted_at } };
  }

  findById(id: number): DeviceRow | undefined {
    return this.byId.get(id);
  }

  listByUser(userId: number, options: { includeRevoked: boolean }): DeviceRow[] {
    return this.byUser.all(userId, options.includeRevoked ? 1 : 0);
  }

  /** Revokes one device: its token stops working at once. False if it was already revoked. */
  revoke(id: number, now: number): boolean {
    return this.revokeStatement.run(now, id).changes === 1;
  }

  /** Revokes every live device of a user except `keepDeviceId` (null keeps none). Returns the revoked ids. */
  revokeAllOfUser(userId: number, keepDeviceId: number | null, now: number): number[] {
    // Device ids start at 1: 0 matches none.
    return (this.revokeForUserStatement.all(now, userId, keepDeviceId ?? 0) as Array<{ id: number }>).map((row) => row.id);
  }

  /**
   * What authentication checks, by device id: revoked, user disabled, user
   * deleted. Two primary-key reads: cheap enough for every message stored.
   */
  tokenState(id: number): TokenState | undefined {
    const bits = this.tokenStateStatement.get(id);
    if (bits === undefined) return undefined;
    return { revoked: (bits & 1) === 1, disabled: (bits & 2) === 2, deleted: (bits & 4) === 4 };
  }

  touch(id: number, now: number): void {
    this.touchStatement.run(now, id);
  }
}
