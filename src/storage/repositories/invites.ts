import type { Db } from '../database.js';
import type { NewInvite } from '../ports/admin.js';

/** An invite as stored: the code itself is not, only its hash and first letters. */
export interface InviteRow {
  readonly id: number;
  readonly code_prefix: string;
  readonly created_at: number;
  readonly expires_at: number | null;
  readonly max_uses: number;
  readonly uses: number;
  readonly revoked_at: number | null;
  readonly note: string;
}

export type { NewInvite };

const COLUMNS = 'id, code_prefix, created_at, expires_at, max_uses, uses, revoked_at, note';

export class InvitesRepository {
  private readonly insertStatement;
  private readonly all;
  private readonly byId;
  private readonly byHash;
  private readonly revokeStatement;
  private readonly consumeStatement;

  constructor(db: Db) {
    this.insertStatement = db.prepare<[Buffer, string, number, number | null, number, string]>(
      'INSERT INTO invites (code_hash, code_prefix, created_at, expires_at, max_uses, note) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.all = db.prepare<[], InviteRow>(`SELECT ${COLUMNS} FROM invites ORDER BY created_at, id`);
    this.byId = db.prepare<[number], InviteRow>(`SELECT ${COLUMNS} FROM invites WHERE id = ?`);
    this.byHash = db.prepare<[Buffer], InviteRow>(`SELECT ${COLUMNS} FROM invites WHERE code_hash = ?`);
    this.revokeStatement = db.prepare<[number, number]>('UPDATE invites SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL');
    this.consumeStatement = db.prepare<[Buffer, number], { id: number }>(
      `UPDATE invites SET uses = uses + 1
        WHERE code_hash = ? AND revoked_at IS NULL AND uses < max_uses AND (expires_at IS NULL OR expires_at > ?)
        RETURNING id`,
    );
  }

  /** Returns the new invite's id. */
  insert(invite: NewInvite): number {
    const result = this.insertStatement.run(invite.codeHash, invite.codePrefix, invite.now, invite.expiresAt, invite.maxUses, invite.note);
    return Number(result.lastInsertRowid);
  }

  list(): InviteRow[] {
    return this.all.all();
  }

  findById(id: number): InviteRow | undefined {
    return this.byId.get(id);
  }

  findByHash(codeHash: Buffer): InviteRow | undefined {
    return this.byHash.get(codeHash);
  }

  revoke(id: number, now: number): boolean {
    return this.revokeStatement.run(now, id).changes === 1;
  }

  /** Uses the invite once if it is valid now: its id, or undefined if unknown, revoked, used up or expired. */
  consume(codeHash: Buffer, now: number): number | undefined {
    return this.consumeStatement.get(codeHash, now)?.id;
  }
}
