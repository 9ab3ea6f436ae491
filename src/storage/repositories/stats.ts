import type { Db } from '../database.js';

export interface TableCounts {
  readonly users: number;
  readonly disabled_users: number;
  readonly devices: number;
  readonly threads: number;
  readonly messages: number;
  readonly inbox_entries: number;
  readonly invites_open: number;
}

export class StatsRepository {
  private readonly countsStatement;

  constructor(db: Db) {
    this.countsStatement = db.prepare<[number], TableCounts>(
      `SELECT
         (SELECT count(*) FROM users WHERE deleted_at IS NULL) AS users,
         (SELECT count(*) FROM users WHERE deleted_at IS NULL AND disabled = 1) AS disabled_users,
         (SELECT count(*) FROM devices WHERE revoked_at IS NULL) AS devices,
         (SELECT count(*) FROM threads) AS threads,
         (SELECT count(*) FROM messages) AS messages,
         (SELECT count(*) FROM inbox) AS inbox_entries,
         (SELECT count(*) FROM invites
           WHERE revoked_at IS NULL AND uses < max_uses AND (expires_at IS NULL OR expires_at > ?)) AS invites_open`,
    );
  }

  counts(now: number): TableCounts {
    return this.countsStatement.get(now) as TableCounts;
  }
}
