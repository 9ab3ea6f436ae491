import type { Db } from '../database.js';

export interface InviteRow {
  readonly code: string;
  readonly created_at: number;
  readonly expires_at: number | null;
  readonly max_uses: number;
  readonly uses: number;
  readonly revoked_at: number | null;
  readonly note: string;
}

export interface NewInvite {
  readonly code: string;
  readonly now: number;
  readonly expiresAt: number | null;
  readonly maxUses: number;
  readonly note: string;
}

export class InvitesRepository {
  private readonly insertStatement;
  private readonly all;
  private readonly byCode;
  private readonly revokeStatement;
  private readonly consumeStatement;

  constructor(db: Db) {
    this.insertStatement = db.prepare<[string, number, number | null, number, string]>(
      'INSERT INTO invites (code, created_at, expires_at, max_uses, note) VALUES (?, ?, ?, ?, ?)',
    );
    this.all = db.prepare<[], InviteRow>('SELECT * FROM invites ORDER BY created_at, code');
    this.byCode = db.prepare<[string], InviteRow>('SELECT * FROM invites WHERE code = ?');
    this.revokeStatement = db.prepare<[number, string]>('UPDATE invites SET revoked_at = ? WHERE code = ? AND revoked_at IS NULL');
    this.consumeStatement = db.prepare<[string, number]>(
      `UPDATE invites SET uses = uses + 1
        WHERE code = ? AND revoked_at IS NULL AND uses < max_uses AND (expires_at IS NULL OR expires_at > ?)`,
    );
  }

  insert(invite: NewInvite): void {
    this.insertStatement.run(invite.code, invite.now, invite.expiresAt, invite.maxUses, invite.note);
  }

  list(): InviteRow[] {
    return this.all.all();
  }

  find(code: string): InviteRow | undefined {
    return this.byCode.get(code);
  }

  revoke(code: string, now: number): boolean {
    return this.revokeStatement.run(now, code).changes === 1;
  }

  /** Uses the invite once if it is valid now; false if unknown, revoked, used up or expired. */
  consume(code: string, now: number): boolean {
    return this.consumeStatement.run(code, now).changes === 1;
  }
}
