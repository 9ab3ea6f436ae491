import type { RevocationChange, StoredAccount } from '../ports/accounts.js';
import type { AdminStorage, NewInvite, PushCounts, StoredInvite, TableCounts } from '../ports/admin.js';
import type { PushRegistration } from '../ports/push.js';
import { INVITE_COLUMNS, type InviteRow, USER_COLUMNS, type UserRow, toStoredAccount, toStoredInvite } from './account-rows.js';
import { PostgresAccountsStorage, revokeAllOfUser } from './accounts.js';
import { badgeCount } from './badge.js';
import { dropPushToken, pushCounts, pushRegistration } from './push.js';
import { recordRevocationEvents } from './revocation-events.js';

/** AdminStorage on PostgreSQL (the admin CLI's process, or a node): the account reads and units, plus the admin's own. */
export class PostgresAdminStorage extends PostgresAccountsStorage implements AdminStorage {
  async listUsers(): Promise<StoredAccount[]> {
    // By name case-insensitively and byte by byte, as SQLite's NOCASE column orders them.
    const { rows } = await this.db.read.query<UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE deleted_at IS NULL ORDER BY lower(username) COLLATE "C", id`);
    return rows.map(toStoredAccount);
  }

  /** The user's row is locked first: of two disables at once, only the first records `user_disabled`. */
  disableUser(input: { userId: number; now: number }): Promise<RevocationChange> {
    return this.db.writes.submit(async (sql): Promise<RevocationChange> => {
      const { rows } = await sql.query<{ disabled: boolean }>('SELECT disabled FROM users WHERE id = $1 FOR UPDATE', [input.userId]);
      const wasEnabled = rows[0]?.disabled === false;
      await sql.query('UPDATE users SET disabled = true WHERE id = $1 AND deleted_at IS NULL', [input.userId]);
      const deviceIds = await revokeAllOfUser(sql, input.userId, null, input.now);
      const events = wasEnabled ? await recordRevocationEvents(sql, { userId: input.userId, deviceIds: null, reason: 'user_disabled', now: input.now }) : [];
      return { deviceIds, events };
    });
  }

  async enableUser(userId: number): Promise<void> {
    await this.db.writes.submit((sql) => sql.query('UPDATE users SET disabled = false WHERE id = $1 AND deleted_at IS NULL', [userId]));
  }

  deleteUser(input: { userId: number; now: number }): Promise<RevocationChange> {
    return this.db.writes.submit(async (sql): Promise<RevocationChange> => {
      await sql.query('UPDATE users SET deleted_at = $1, password_hash = NULL, disabled = true WHERE id = $2 AND deleted_at IS NULL', [input.now, input.userId]);
      const deviceIds = await revokeAllOfUser(sql, input.userId, null, input.now);
      return { deviceIds, events: await recordRevocationEvents(sql, { userId: input.userId, deviceIds: null, reason: 'user_deleted', now: input.now }) };
    });
  }

  createInvite(invite: NewInvite): Promise<number> {
    return this.db.writes.submit(async (sql) => {
      const { rows } = await sql.query<{ id: number }>(
        'INSERT INTO invites (code_hash, code_prefix, created_at, expires_at, max_uses, note) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id',
        [invite.codeHash, invite.codePrefix, invite.now, invite.expiresAt, invite.maxUses, invite.note],
      );
      return (rows[0] as { id: number }).id;
    });
  }

  async listInvites(): Promise<StoredInvite[]> {
    const { rows } = await this.db.read.query<InviteRow>(`SELECT ${INVITE_COLUMNS} FROM invites ORDER BY created_at, id`);
    return rows.map(toStoredInvite);
  }

  async invite(ref: { id: number } | { codeHash: Buffer }): Promise<StoredInvite | undefined> {
    const { rows } =
      'id' in ref
        ? await this.db.read.query<InviteRow>(`SELECT ${INVITE_COLUMNS} FROM invites WHERE id = $1`, [ref.id])
        : await this.db.read.query<InviteRow>(`SELECT ${INVITE_COLUMNS} FROM invites WHERE code_hash = $1`, [ref.codeHash]);
    return rows[0] && toStoredInvite(rows[0]);
  }

  revokeInvite(id: number, now: number): Promise<boolean> {
    return this.db.writes.submit(async (sql) => (await sql.query('UPDATE invites SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [now, id])).rowCount === 1);
  }

  async counts(now: number): Promise<TableCounts> {
    const { rows } = await this.db.read.query<{
      users: number;
      disabled_users: number;
      devices: number;
      threads: number;
      messages: number;
      inbox_entries: number;
      invites_open: number;
    }>(
      `SELECT
         (SELECT count(*) FROM users WHERE deleted_at IS NULL) AS users,
         (SELECT count(*) FROM users WHERE deleted_at IS NULL AND disabled) AS disabled_users,
         (SELECT count(*) FROM devices WHERE revoked_at IS NULL) AS devices,
         (SELECT count(*) FROM threads) AS threads,
         (SELECT count(*) FROM messages) AS messages,
         (SELECT count(*) FROM inbox) AS inbox_entries,
         (SELECT count(*) FROM invites
           WHERE revoked_at IS NULL AND uses < max_uses AND (expires_at IS NULL OR expires_at > $1)) AS invites_open`,
      [now],
    );
    const row = rows[0] as NonNullable<(typeof rows)[0]>;
    return {
      users: row.users,
      disabledUsers: row.disabled_users,
      devices: row.devices,
      threads: row.threads,
      messages: row.messages,
      inboxEntries: row.inbox_entries,
      invitesOpen: row.invites_open,
    };
  }

  pushCounts(): Promise<PushCounts> {
    return pushCounts(this.db.read);
  }

  pushRegistration(deviceId: number): Promise<PushRegistration | undefined> {
    return pushRegistration(this.db.read, deviceId);
  }

  /** The badge of a test notification: the same read as a notification's (PushQueueStorage.badgeCount). */
  badgeCount(userId: number): Promise<number> {
    return badgeCount(this.db.read, userId);
  }

  dropPushToken(deviceId: number, token: string): Promise<boolean> {
    return this.db.writes.submit((sql) => dropPushToken(sql, deviceId, token));
  }
}
