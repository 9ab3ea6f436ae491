import type { Db } from '../database.js';

export interface ContactRow {
  readonly user_id: number;
  readonly username: string;
  readonly display_name: string;
  readonly created_at: number;
}

export class ContactsRepository {
  private readonly addStatement;
  private readonly removeStatement;
  private readonly listStatement;
  private readonly hasStatement;

  constructor(db: Db) {
    this.addStatement = db.prepare<[number, number, number]>(
      'INSERT INTO contacts (user_id, contact_user_id, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
    );
    this.removeStatement = db.prepare<[number, number]>('DELETE FROM contacts WHERE user_id = ? AND contact_user_id = ?');
    this.listStatement = db.prepare<[number], ContactRow>(
      `SELECT u.id AS user_id, u.username, u.display_name, c.created_at
         FROM contacts c JOIN users u ON u.id = c.contact_user_id
        WHERE c.user_id = ? AND u.deleted_at IS NULL ORDER BY u.username`,
    );
    this.hasStatement = db.prepare<[number, number], number>('SELECT 1 FROM contacts WHERE user_id = ? AND contact_user_id = ?').pluck();
  }

  /** True when added, false when it was a contact already. */
  add(userId: number, contactUserId: number, now: number): boolean {
    return this.addStatement.run(userId, contactUserId, now).changes === 1;
  }

  remove(userId: number, contactUserId: number): boolean {
    return this.removeStatement.run(userId, contactUserId).changes === 1;
  }

  list(userId: number): ContactRow[] {
    return this.listStatement.all(userId);
  }

  ids(userId: number): number[] {
    return this.listStatement.all(userId).map((row) => row.user_id);
  }

  has(userId: number, contactUserId: number): boolean {
    return this.hasStatement.get(userId, contactUserId) === 1;
  }
}
