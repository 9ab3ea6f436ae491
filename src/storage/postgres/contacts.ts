import type { StoredAccount } from '../ports/accounts.js';
import type { ContactsStorage, StoredContact } from '../ports/contacts.js';
import type { PgDatabase } from './database.js';

/** A user row as the ports spell it (the aliases do the mapping). */
export const ACCOUNT = `u.id, u.username, u.display_name AS "displayName", u.password_hash AS "passwordHash", u.disabled,
  u.created_at AS "createdAt", u.deleted_at AS "deletedAt", u.last_active_at AS "lastActiveAt"`;

/** ContactsStorage on PostgreSQL: each write one statement (its row lock is all it needs). */
export class PostgresContactsStorage implements ContactsStorage {
  constructor(private readonly db: PgDatabase) {}

  async userById(id: number): Promise<StoredAccount | undefined> {
    const { rows } = await this.db.read.query<Readonly<StoredAccount>>(`SELECT ${ACCOUNT} FROM users u WHERE u.id = $1`, [id]);
    return rows[0];
  }

  /** Case-insensitive, as usernames are unique on lower(username). */
  async userByUsername(username: string): Promise<StoredAccount | undefined> {
    const { rows } = await this.db.read.query<Readonly<StoredAccount>>(`SELECT ${ACCOUNT} FROM users u WHERE lower(u.username) = lower($1)`, [username]);
    return rows[0];
  }

  addContact(userId: number, contactUserId: number, now: number): Promise<boolean> {
    return this.db.writes.submit(async (sql) => {
      const result = await sql.query('INSERT INTO contacts (user_id, contact_user_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [userId, contactUserId, now]);
      return result.rowCount === 1;
    });
  }

  removeContact(userId: number, contactUserId: number): Promise<boolean> {
    return this.db.writes.submit(async (sql) => {
      const result = await sql.query('DELETE FROM contacts WHERE user_id = $1 AND contact_user_id = $2', [userId, contactUserId]);
      return result.rowCount === 1;
    });
  }

  async contacts(userId: number): Promise<StoredContact[]> {
    const { rows } = await this.db.read.query<{ id: number; username: string; displayName: string; addedAt: number }>(
      `SELECT u.id, u.username, u.display_name AS "displayName", c.created_at AS "addedAt"
         FROM contacts c JOIN users u ON u.id = c.contact_user_id
        WHERE c.user_id = $1 AND u.deleted_at IS NULL ORDER BY lower(u.username)`,
      [userId],
    );
    return rows.map((row) => ({ user: { id: row.id, username: row.username, displayName: row.displayName }, addedAt: row.addedAt }));
  }
}
