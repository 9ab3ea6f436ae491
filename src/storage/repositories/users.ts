import type { Db } from '../database.js';
import { escapeLike } from '../like-pattern.js';

export interface UserRow {
  readonly id: number;
  readonly username: string;
  readonly display_name: string;
  readonly password_hash: string | null;
  readonly disabled: 0 | 1;
  readonly created_at: number;
  readonly deleted_at: number | null;
  readonly last_active_at: number | null;
}

export interface NewUser {
  readonly username: string;
  readonly displayName: string;
  readonly passwordHash: string;
  readonly now: number;
}

const COLUMNS = 'id, username, display_name, password_hash, disabled, created_at, deleted_at, last_active_at';

export class UsersRepository {
  private readonly insertStatement;
  private readonly byUsername;
  private readonly byId;
  private readonly all;
  private readonly setHash;
  private readonly setDisabledStatement;
  private readonly markDeletedStatement;
  private readonly activeStatement;
  private readonly setNameStatement;
  private readonly prefixStatement;
  private readonly exactStatement;

  constructor(db: Db) {
    this.insertStatement = db.prepare<[string, string, string, number]>(
      'INSERT INTO users (username, display_name, password_hash, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (username) DO NOTHING',
    );
    this.byUsername = db.prepare<[string], UserRow>(`SELECT ${COLUMNS} FROM users WHERE username = ?`);
    this.byId = db.prepare<[number], UserRow>(`SELECT ${COLUMNS} FROM users WHERE id = ?`);
    this.all = db.prepare<[], UserRow>(`SELECT ${COLUMNS} FROM users WHERE deleted_at IS NULL ORDER BY username`);
    this.setHash = db.prepare<[string, number]>('UPDATE users SET password_hash = ? WHERE id = ? AND deleted_at IS NULL');
    this.setDisabledStatement = db.prepare<[0 | 1, number]>('UPDATE users SET disabled = ? WHERE id = ? AND deleted_at IS NULL');
    this.activeStatement = db.prepare<[number, number]>('UPDATE users SET last_active_at = ? WHERE id = ?');
    this.setNameStatement = db.prepare<[string, number]>('UPDATE users SET display_name = ? WHERE id = ? AND deleted_at IS NULL');
    // username is COLLATE NOCASE and LIKE folds ASCII case: both case-insensitive, as PostgreSQL's lower()/ILIKE.
    this.prefixStatement = db.prepare<{ exact: string; prefix: string; word: string; exclude: number; limit: number }, UserRow>(
      `SELECT ${COLUMNS} FROM users
        WHERE deleted_at IS NULL AND disabled = 0 AND id <> @exclude
          AND (username LIKE @prefix ESCAPE '\\' OR display_name LIKE @prefix ESCAPE '\\' OR display_name LIKE @word ESCAPE '\\')
        ORDER BY username = @exact DESC, username LIMIT @limit`,
    );
    this.exactStatement = db.prepare<[string, number], UserRow>(
      `SELECT ${COLUMNS} FROM users WHERE username = ? AND deleted_at IS NULL AND disabled = 0 AND id <> ?`,
    );
    this.markDeletedStatement = db.prepare<[number, number]>(
      'UPDATE users SET deleted_at = ?, password_hash = NULL, disabled = 1 WHERE id = ? AND deleted_at IS NULL',
    );
  }

  /** Returns the new user's id, or undefined when the username (in any case) is taken, deleted users included. */
  insert(user: NewUser): number | undefined {
    const result = this.insertStatement.run(user.username, user.displayName, user.passwordHash, user.now);
    return result.changes === 1 ? Number(result.lastInsertRowid) : undefined;
  }

  /** Case-insensitive. Deleted users are found too (their names stay reserved); callers check deleted_at. */
  findByUsername(username: string): UserRow | undefined {
    return this.byUsername.get(username);
  }

  findById(id: number): UserRow | undefined {
    return this.byId.get(id);
  }

  /** Every user that is not deleted, by username. */
  list(): UserRow[] {
    return this.all.all();
  }

  setPasswordHash(id: number, hash: string): boolean {
    return this.setHash.run(hash, id).changes === 1;
  }

  setDisabled(id: number, disabled: boolean): boolean {
    return this.setDisabledStatement.run(disabled ? 1 : 0, id).changes === 1;
  }

  markDeleted(id: number, now: number): boolean {
    return this.markDeletedStatement.run(now, id).changes === 1;
  }

  setDisplayName(id: number, displayName: string): boolean {
    return this.setNameStatement.run(displayName, id).changes === 1;
  }

  /** Users whose username, display name or a word of it starts with `query` (ASCII case folded); the whole username first. */
  findByPrefix(query: string, excludeUserId: number, limit: number): UserRow[] {
    const escaped = escapeLike(query);
    return this.prefixStatement.all({ exact: query, prefix: `${escaped}%`, word: `% ${escaped}%`, exclude: excludeUserId, limit });
  }

  /** The user named exactly `username` (any case), when enabled and not deleted. */
  findExact(username: string, excludeUserId: number): UserRow | undefined {
    return this.exactStatement.get(username, excludeUserId);
  }

  /** When the user was last seen online (presence). */
  setLastActive(id: number, now: number): void {
    this.activeStatement.run(now, id);
  }
}
