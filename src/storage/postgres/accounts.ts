import type { AccountsStorage, AddDeviceOutcome, CreateUserOutcome, DeviceWithUser, RevocationChange, StoredAccount, StoredDevice, UserQuery } from '../ports/accounts.js';
import { escapeLike } from '../like-pattern.js';
import type { TokenState } from '../ports/token.js';
import { DEVICE_COLUMNS, type DeviceRow, USER_COLUMNS, type UserRow, toStoredAccount, toStoredDevice } from './account-rows.js';
import type { PgDatabase } from './database.js';
import { recordRevocationEvents } from './revocation-events.js';
import type { Sql } from './sql.js';

/**
 * AccountsStorage on PostgreSQL: reads are single statements on the pool;
 * each unit is a few statements in the group commit. Where SQLite relied on
 * its single writer, a unit takes the row locks another node's unit would
 * race on (named at each unit).
 */
export class PostgresAccountsStorage implements AccountsStorage {
  constructor(protected readonly db: PgDatabase) {}

  async userById(id: number): Promise<StoredAccount | undefined> {
    const { rows } = await this.db.read.query<UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE id = $1`, [id]);
    return rows[0] && toStoredAccount(rows[0]);
  }

  async userByUsername(username: string): Promise<StoredAccount | undefined> {
    // lower(): the unique index's expression, as SQLite's NOCASE (usernames are ASCII).
    const { rows } = await this.db.read.query<UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE lower(username) = lower($1)`, [username]);
    return rows[0] && toStoredAccount(rows[0]);
  }

  async deviceByTokenHash(tokenHash: Buffer): Promise<DeviceWithUser | undefined> {
    const { rows } = await this.db.read.query<DeviceRow & { username: string; display_name: string; disabled: boolean; deleted_at: number | null }>(
      `SELECT d.id, d.user_id, d.name, d.platform, d.created_at, d.last_seen_at, d.revoked_at, u.username, u.display_name, u.disabled, u.deleted_at
         FROM devices d JOIN users u ON u.id = d.user_id
        WHERE d.token_hash = $1 AND d.revoked_at IS NULL`,
      [tokenHash],
    );
    const row = rows[0];
    if (!row) return undefined;
    return {
      device: toStoredDevice(row),
      user: { id: row.user_id, username: row.username, displayName: row.display_name, disabled: row.disabled, deletedAt: row.deleted_at },
    };
  }

  async tokenState(deviceId: number): Promise<TokenState | undefined> {
    const { rows } = await this.db.read.query<{ revoked: boolean; disabled: boolean; deleted: boolean }>(
      `SELECT d.revoked_at IS NOT NULL AS revoked, u.disabled, u.deleted_at IS NOT NULL AS deleted
         FROM devices d JOIN users u ON u.id = d.user_id WHERE d.id = $1`,
      [deviceId],
    );
    const row = rows[0];
    return row && { revoked: row.revoked, disabled: row.disabled, deleted: row.deleted };
  }

  async deviceById(deviceId: number): Promise<StoredDevice | undefined> {
    const { rows } = await this.db.read.query<DeviceRow>(`SELECT ${DEVICE_COLUMNS} FROM devices WHERE id = $1`, [deviceId]);
    return rows[0] && toStoredDevice(rows[0]);
  }

  async devicesOfUser(userId: number, options: { includeRevoked: boolean }): Promise<StoredDevice[]> {
    const { rows } = await this.db.read.query<DeviceRow>(
      `SELECT ${DEVICE_COLUMNS} FROM devices WHERE user_id = $1 AND ($2 OR revoked_at IS NULL) ORDER BY id`,
      [userId, options.includeRevoked],
    );
    return rows.map(toStoredDevice);
  }

  /**
   * The invite's use is an UPDATE … RETURNING: a node redeeming it at the
   * same time waits for this commit, then finds it used up (PostgreSQL checks
   * the condition again on the row it waited for). A taken name gives the
   * use back in the same unit, so the commit changes nothing of the invite.
   */
  createUser(input: { username: string; displayName: string; passwordHash: string; inviteHash: Buffer | null; now: number }): Promise<CreateUserOutcome> {
    return this.db.writes.submit(async (sql): Promise<CreateUserOutcome> => {
      let inviteId: number | undefined;
      if (input.inviteHash !== null) {
        const used = await sql.query<{ id: number }>(
          `UPDATE invites SET uses = uses + 1
            WHERE code_hash = $1 AND revoked_at IS NULL AND uses < max_uses AND (expires_at IS NULL OR expires_at > $2)
            RETURNING id`,
          [input.inviteHash, input.now],
        );
        inviteId = used.rows[0]?.id;
        if (inviteId === undefined) return { kind: 'refused', reason: 'invite_invalid' };
      }
      // A name taken (in any case) by another node's unit at the same time: this one waits for it, then inserts nothing.
      const inserted = await sql.query<{ id: number }>(
        `INSERT INTO users (username, display_name, password_hash, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING RETURNING id`,
        [input.username, input.displayName, input.passwordHash, input.now],
      );
      const userId = inserted.rows[0]?.id;
      if (userId === undefined) {
        if (inviteId !== undefined) await sql.query('UPDATE invites SET uses = uses - 1 WHERE id = $1', [inviteId]);
        return { kind: 'refused', reason: 'username_taken' };
      }
      return { kind: 'created', userId, inviteId };
    });
  }

  async setPasswordHash(userId: number, passwordHash: string): Promise<void> {
    await this.db.writes.submit((sql) => sql.query('UPDATE users SET password_hash = $1 WHERE id = $2 AND deleted_at IS NULL', [passwordHash, userId]));
  }

  /** The user's row is read FOR SHARE: a disable or delete on another node waits, and then revokes this device too. */
  addDevice(input: { userId: number; name: string; platform: string; tokenHash: Buffer; now: number }): Promise<AddDeviceOutcome> {
    return this.db.writes.submit(async (sql): Promise<AddDeviceOutcome> => {
      const { rows } = await sql.query<{ usable: boolean }>('SELECT NOT disabled AND deleted_at IS NULL AS usable FROM users WHERE id = $1 FOR SHARE', [input.userId]);
      if (!rows[0]?.usable) return { kind: 'refused', reason: 'account_disabled' };
      const added = await sql.query<{ id: number }>(
        `INSERT INTO devices (user_id, name, platform, token_hash, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $5) RETURNING id`,
        [input.userId, input.name, input.platform, input.tokenHash, input.now],
      );
      return { kind: 'added', deviceId: (added.rows[0] as { id: number }).id };
    });
  }

  changePassword(input: { userId: number; passwordHash: string; revoke: { keepDeviceId: number | null } | null; now: number }): Promise<RevocationChange> {
    return this.db.writes.submit(async (sql): Promise<RevocationChange> => {
      await sql.query('UPDATE users SET password_hash = $1 WHERE id = $2 AND deleted_at IS NULL', [input.passwordHash, input.userId]);
      if (!input.revoke) return { deviceIds: [], events: [] };
      const deviceIds = await revokeAllOfUser(sql, input.userId, input.revoke.keepDeviceId, input.now);
      return { deviceIds, events: await recordRevocationEvents(sql, { userId: input.userId, deviceIds, reason: 'password_changed', now: input.now }) };
    });
  }

  revokeDevices(input: { userId: number; deviceIds: readonly number[]; now: number }): Promise<RevocationChange> {
    return this.db.writes.submit(async (sql): Promise<RevocationChange> => {
      const revoked = new Set(await revokeDevices(sql, input.deviceIds, input.now));
      // In the order asked, each once, as SQLite answers.
      const deviceIds = [...new Set(input.deviceIds)].filter((id) => revoked.has(id));
      return { deviceIds, events: await recordRevocationEvents(sql, { userId: input.userId, deviceIds, reason: 'device_revoked', now: input.now }) };
    });
  }

  async setDisplayName(userId: number, displayName: string): Promise<boolean> {
    const result = await this.db.writes.submit((sql) => sql.query('UPDATE users SET display_name = $1 WHERE id = $2 AND deleted_at IS NULL', [displayName, userId]));
    return result.rowCount === 1;
  }

  /** lower()/ILIKE fold ASCII case as SQLite's NOCASE and LIKE do (more letters under a non-C collation). */
  async findUsers(query: UserQuery): Promise<StoredAccount[]> {
    if (query.match === 'exact') {
      const { rows } = await this.db.read.query<UserRow>(
        `SELECT ${USER_COLUMNS} FROM users WHERE lower(username) = lower($1) AND deleted_at IS NULL AND NOT disabled AND id <> $2`,
        [query.query, query.excludeUserId],
      );
      return rows.slice(0, query.limit).map(toStoredAccount);
    }
    const escaped = escapeLike(query.query);
    const { rows } = await this.db.read.query<UserRow>(
      `SELECT ${USER_COLUMNS} FROM users
        WHERE deleted_at IS NULL AND NOT disabled AND id <> $4
          AND (username ILIKE $2 ESCAPE '\\' OR display_name ILIKE $2 ESCAPE '\\' OR display_name ILIKE $3 ESCAPE '\\')
        ORDER BY lower(username) = lower($1) DESC, lower(username) LIMIT $5`,
      [query.query, `${escaped}%`, `% ${escaped}%`, query.excludeUserId, query.limit],
    );
    return rows.map(toStoredAccount);
  }

  async touchDevice(deviceId: number, at: number): Promise<void> {
    await this.db.writes.submit((sql) => sql.query('UPDATE devices SET last_seen_at = $1 WHERE id = $2', [at, deviceId]));
  }
}

const REVOKE = 'revoked_at = $1, token_hash = NULL, push_platform = NULL, push_token = NULL, push_topic = NULL';

/** Revokes those of `deviceIds` still live (rows locked in id order: no deadlock with another revocation); their ids. */
export async function revokeDevices(sql: Sql, deviceIds: readonly number[], now: number): Promise<number[]> {
  const { rows } = await sql.query<{ id: number }>(
    `WITH target AS (SELECT id FROM devices WHERE id = ANY($2::bigint[]) AND revoked_at IS NULL ORDER BY id FOR UPDATE)
     UPDATE devices d SET ${REVOKE} FROM target WHERE d.id = target.id RETURNING d.id`,
    [now, [...deviceIds]],
  );
  return rows.map((row) => row.id).sort((a, b) => a - b);
}

/** Revokes every live device of the user but `keepDeviceId` (null: none), in id order; their ids. */
export async function revokeAllOfUser(sql: Sql, userId: number, keepDeviceId: number | null, now: number): Promise<number[]> {
  // Device ids start at 1: 0 keeps none.
  const { rows } = await sql.query<{ id: number }>(
    `WITH target AS (SELECT id FROM devices WHERE user_id = $2 AND id <> $3 AND revoked_at IS NULL ORDER BY id FOR UPDATE)
     UPDATE devices d SET ${REVOKE} FROM target WHERE d.id = target.id RETURNING d.id`,
    [now, userId, keepDeviceId ?? 0],
  );
  return rows.map((row) => row.id).sort((a, b) => a - b);
}
