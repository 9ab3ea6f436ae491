import type { Db } from '../database.js';

import type { MemberRole, ThreadKind } from '../ports/threads.js';

export type { MemberRole, ThreadKind };

export interface ThreadRow {
  readonly id: number;
  readonly kind: ThreadKind;
  readonly title: string | null;
  readonly last_seq: number;
  readonly last_message_at: number | null;
  readonly created_by: number | null;
  readonly created_at: number;
  readonly e2e_required: 0 | 1;
  /** Change rows in the thread so far (the `uncounted` of its last row). */
  readonly uncounted: number;
}

export interface MembershipRow {
  readonly thread_id: number;
  readonly user_id: number;
  readonly role: MemberRole;
  readonly joined_seq: number;
  readonly left_seq: number | null;
  readonly read_seq: number;
  readonly delivered_seq: number;
  readonly muted: 0 | 1;
  readonly label: string | null;
  readonly joined_at: number;
}

export interface MemberRow {
  readonly user_id: number;
  readonly username: string;
  readonly display_name: string;
  readonly role: MemberRole;
  readonly joined_at: number;
  readonly read_seq: number;
  readonly delivered_seq: number;
}

/** A thread as a sender needs it: where its seqs are, who is in it, its rule, and whether the sender still is. */
export interface SenderState {
  readonly last_seq: number;
  readonly member_count: number;
  readonly e2e_required: 0 | 1;
  readonly left_seq: number | null;
  /** What the sender may see starts after it (a reply's target must be later). */
  readonly joined_seq: number;
  readonly uncounted: number;
}

/** A thread as a change (edit, delete, reaction) needs it: a sender's, plus who may delete what. */
export interface ChangerState extends SenderState {
  readonly kind: ThreadKind;
  readonly role: MemberRole;
}

/**
 * A thread as one user sees it in their list: the thread, their membership,
 * and the change rows at the two ends of their unread range (ports/visibility.ts, Uncounted).
 */
export type UserThreadRow = ThreadRow &
  Omit<MembershipRow, 'thread_id' | 'user_id' | 'joined_at'> & { readonly member_count: number; readonly uncounted_start: number; readonly uncounted_end: number };

const THREAD = 't.id, t.kind, t.title, t.last_seq, t.last_message_at, t.created_by, t.created_at, t.e2e_required, t.uncounted';
// The `uncounted` of the rows at max(read, joined) and at the end of what the member sees: no read at all
// while the thread has no change rows, none for the end while the member is in the thread.
const UNCOUNTED = `
  CASE WHEN t.uncounted = 0 THEN 0
       ELSE coalesce((SELECT x.uncounted FROM messages x WHERE x.thread_id = t.id AND x.seq = max(m.read_seq, m.joined_seq)), 0) END AS uncounted_start,
  CASE WHEN m.left_seq IS NULL THEN t.uncounted WHEN t.uncounted = 0 THEN 0
       ELSE coalesce((SELECT x.uncounted FROM messages x WHERE x.thread_id = t.id AND x.seq = m.left_seq), 0) END AS uncounted_end`;
const MEMBERSHIP = 'thread_id, user_id, role, joined_seq, left_seq, read_seq, delivered_seq, muted, label, joined_at';

export class ThreadsRepository {
  private readonly insertStatement;
  private readonly byId;
  private readonly byDirectKey;
  private readonly setLastSeqStatement;
  private readonly setLastChangeStatement;
  private readonly joinedSinceStatement;
  private readonly changerStateStatement;
  private readonly setTitleStatement;
  private readonly requireE2eStatement;
  private readonly membershipStatement;
  private readonly upsertMemberStatement;
  private readonly leaveStatement;
  private readonly setRoleStatement;
  private readonly membersStatement;
  private readonly memberCountStatement;
  private readonly forUserStatement;
  private readonly forUserThreadStatement;
  private readonly senderStateStatement;
  private readonly activeThreadIdsStatement;
  private readonly setReadStatement;
  private readonly setDeliveredStatement;
  private readonly setSettingsStatement;
  private readonly sharedUsersStatement;
  private readonly everSharedUsersStatement;
  private readonly receiptCursorsStatement;

  constructor(db: Db) {
    this.insertStatement = db.prepare<[string, string | null, string | null, number, number]>(
      'INSERT INTO threads (kind, title, direct_key, created_by, created_at) VALUES (?, ?, ?, ?, ?)',
    );
    this.byId = db.prepare<[number], ThreadRow>(`SELECT ${THREAD} FROM threads t WHERE t.id = ?`);
    this.byDirectKey = db.prepare<[string], ThreadRow>(`SELECT ${THREAD} FROM threads t WHERE t.direct_key = ?`);
    this.setLastSeqStatement = db.prepare<[number, number, number]>('UPDATE threads SET last_seq = ?, last_message_at = ? WHERE id = ?');
    // A change row takes a seq but is no activity of the thread's: last_message_at stays.
    this.setLastChangeStatement = db.prepare<[number, number, number]>('UPDATE threads SET last_seq = ?, uncounted = ? WHERE id = ?');
    this.joinedSinceStatement = db.prepare<[number, number], number>('SELECT 1 FROM thread_members WHERE thread_id = ? AND left_seq IS NULL AND joined_seq >= ? LIMIT 1').pluck();
    this.setTitleStatement = db.prepare<[string, number]>('UPDATE threads SET title = ? WHERE id = ?');
    this.requireE2eStatement = db.prepare<[number]>('UPDATE threads SET e2e_required = 1 WHERE id = ?');
    this.membershipStatement = db.prepare<[number, number], MembershipRow>(
      `SELECT ${MEMBERSHIP} FROM thread_members WHERE thread_id = ? AND user_id = ?`,
    );
    this.upsertMemberStatement = db.prepare<[number, number, string, number, number, number]>(
      `INSERT INTO thread_members (thread_id, user_id, role, joined_seq, read_seq, joined_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (thread_id, user_id) DO UPDATE SET role = excluded.role, joined_seq = excluded.joined_seq,
         read_seq = excluded.read_seq, delivered_seq = excluded.joined_seq, left_seq = NULL, joined_at = excluded.joined_at`,
    );
    this.leaveStatement = db.prepare<[number, number, number]>(
      'UPDATE thread_members SET left_seq = ? WHERE thread_id = ? AND user_id = ? AND left_seq IS NULL',
    );
    this.setRoleStatement = db.prepare<[string, number, number]>('UPDATE thread_members SET role = ? WHERE thread_id = ? AND user_id = ?');
    this.membersStatement = db.prepare<[number], MemberRow>(
      `SELECT m.user_id, u.username, u.display_name, m.role, m.joined_at, m.read_seq, m.delivered_seq
         FROM thread_members m JOIN users u ON u.id = m.user_id
        WHERE m.thread_id = ? AND m.left_seq IS NULL ORDER BY m.joined_at, m.user_id`,
    );
    this.memberCountStatement = db.prepare<[number], { n: number }>(
      'SELECT count(*) AS n FROM thread_members WHERE thread_id = ? AND left_seq IS NULL',
    );
    this.forUserStatement = db.prepare<[number], UserThreadRow>(
      `SELECT ${THREAD}, m.role, m.joined_seq, m.left_seq, m.read_seq, m.delivered_seq, m.muted, m.label,
              (SELECT count(*) FROM thread_members c WHERE c.thread_id = t.id AND c.left_seq IS NULL) AS member_count, ${UNCOUNTED}
         FROM thread_members m JOIN threads t ON t.id = m.thread_id
        WHERE m.user_id = ?
        ORDER BY coalesce(t.last_message_at, t.created_at) DESC, t.id DESC`,
    );
    this.forUserThreadStatement = db.prepare<[number, number], UserThreadRow>(
      `SELECT ${THREAD}, m.role, m.joined_seq, m.left_seq, m.read_seq, m.delivered_seq, m.muted, m.label,
              (SELECT count(*) FROM thread_members c WHERE c.thread_id = t.id AND c.left_seq IS NULL) AS member_count, ${UNCOUNTED}
         FROM thread_members m JOIN threads t ON t.id = m.thread_id
        WHERE m.thread_id = ? AND m.user_id = ?`,
    );
    // Only what a send needs (it runs for every message): no more columns than that.
    this.senderStateStatement = db.prepare<[number, number], SenderState>(
      `SELECT t.last_seq, t.e2e_required, t.uncounted, m.left_seq, m.joined_seq,
              (SELECT count(*) FROM thread_members c WHERE c.thread_id = t.id AND c.left_seq IS NULL) AS member_count
         FROM thread_members m JOIN threads t ON t.id = m.thread_id
        WHERE m.thread_id = ? AND m.user_id = ?`,
    );
    this.changerStateStatement = db.prepare<[number, number], ChangerState>(
      `SELECT t.last_seq, t.e2e_required, t.uncounted, t.kind, m.left_seq, m.joined_seq, m.role,
              (SELECT count(*) FROM thread_members c WHERE c.thread_id = t.id AND c.left_seq IS NULL) AS member_count
         FROM thread_members m JOIN threads t ON t.id = m.thread_id
        WHERE m.thread_id = ? AND m.user_id = ?`,
    );
    this.activeThreadIdsStatement = db
      .prepare<[number], number>('SELECT thread_id FROM thread_members WHERE user_id = ? AND left_seq IS NULL')
      .pluck();
    this.setReadStatement = db.prepare<[number, number, number, number]>(
      'UPDATE thread_members SET read_seq = ? WHERE thread_id = ? AND user_id = ? AND read_seq < ?',
    );
    this.setDeliveredStatement = db.prepare<[number, number, number, number]>(
      'UPDATE thread_members SET delivered_seq = ? WHERE thread_id = ? AND user_id = ? AND delivered_seq < ?',
    );
    this.setSettingsStatement = db.prepare<[0 | 1, string | null, number, number]>(
      'UPDATE thread_members SET muted = ?, label = ? WHERE thread_id = ? AND user_id = ?',
    );
    this.sharedUsersStatement = db
      .prepare<[number, number], number>(
        `SELECT DISTINCT o.user_id FROM thread_members m JOIN thread_members o ON o.thread_id = m.thread_id
          WHERE m.user_id = ? AND m.left_seq IS NULL AND o.left_seq IS NULL AND o.user_id <> ?`,
      )
      .pluck();
    this.everSharedUsersStatement = db
      .prepare<[number, number], number>(
        `SELECT DISTINCT o.user_id FROM thread_members m JOIN thread_members o ON o.thread_id = m.thread_id
          WHERE m.user_id = ? AND o.user_id <> ?`,
      )
      .pluck();
    // Joining order as thread_get lists members.
    this.receiptCursorsStatement = db.prepare<[number, number], { userId: number; readSeq: number; deliveredSeq: number }>(
      `SELECT user_id AS userId, read_seq AS readSeq, delivered_seq AS deliveredSeq FROM thread_members
        WHERE thread_id = ? AND left_seq IS NULL AND joined_seq < ? ORDER BY joined_at, user_id`,
    );
  }

  insert(kind: ThreadKind, title: string | null, directKey: string | null, createdBy: number, now: number): number {
    return Number(this.insertStatement.run(kind, title, directKey, createdBy, now).lastInsertRowid);
  }

  findById(id: number): ThreadRow | undefined {
    return this.byId.get(id);
  }

  findDirect(directKey: string): ThreadRow | undefined {
    return this.byDirectKey.get(directKey);
  }

  /** Records the thread's newest seq (taken in the caller's transaction) and marks the activity time. */
  setLastSeq(threadId: number, seq: number, now: number): void {
    this.setLastSeqStatement.run(seq, now, threadId);
  }

  /** Records the thread's newest seq, a change row's, and the change rows so far; the activity time stays. */
  /** Whether a current member joined at or after `seq`: one who cannot see the message there. */
  joinedSince(threadId: number, seq: number): boolean {
    return this.joinedSinceStatement.get(threadId, seq) !== undefined;
  }

  setLastChange(threadId: number, seq: number, uncounted: number): void {
    this.setLastChangeStatement.run(seq, uncounted, threadId);
  }

  requireE2e(threadId: number): void {
    this.requireE2eStatement.run(threadId);
  }

  setTitle(threadId: number, title: string): void {
    this.setTitleStatement.run(title, threadId);
  }

  membership(threadId: number, userId: number): MembershipRow | undefined {
    return this.membershipStatement.get(threadId, userId);
  }

  /** Adds a member, or brings back one who left; they see history after joinedSeq. */
  addMember(threadId: number, userId: number, role: MemberRole, joinedSeq: number, now: number): void {
    this.upsertMemberStatement.run(threadId, userId, role, joinedSeq, joinedSeq, now);
  }

  /** Ends a membership: history stays readable up to leftSeq. */
  leave(threadId: number, userId: number, leftSeq: number): boolean {
    return this.leaveStatement.run(leftSeq, threadId, userId).changes === 1;
  }

  setRole(threadId: number, userId: number, role: MemberRole): void {
    this.setRoleStatement.run(role, threadId, userId);
  }

  /** Current members, oldest first. */
  members(threadId: number): MemberRow[] {
    return this.membersStatement.all(threadId);
  }

  memberCount(threadId: number): number {
    return this.memberCountStatement.get(threadId)?.n ?? 0;
  }

  /** Every thread the user is or was in, most recent activity first. */
  forUser(userId: number): UserThreadRow[] {
    return this.forUserStatement.all(userId);
  }

  /** One thread as forUser() shows it, if the user is or was in it. */
  forUserThread(userId: number, threadId: number): UserThreadRow | undefined {
    return this.forUserThreadStatement.get(threadId, userId);
  }

  /** What sending into the thread needs to know of it and of the sender's membership; undefined if never a member. */
  senderState(userId: number, threadId: number): SenderState | undefined {
    return this.senderStateStatement.get(threadId, userId);
  }

  /** What changing a message of the thread needs: senderState plus the thread's kind and the sender's role. */
  changerState(userId: number, threadId: number): ChangerState | undefined {
    return this.changerStateStatement.get(threadId, userId);
  }

  /** Threads the user is a member of now. */
  activeThreadIds(userId: number): number[] {
    return this.activeThreadIdsStatement.all(userId);
  }

  /** Moves the read cursor forward only; true when it moved. */
  advanceRead(threadId: number, userId: number, seq: number): boolean {
    return this.setReadStatement.run(seq, threadId, userId, seq).changes === 1;
  }

  /** Moves the user's delivered cursor forward only; true when it moved. */
  advanceDelivered(threadId: number, userId: number, seq: number): boolean {
    return this.setDeliveredStatement.run(seq, threadId, userId, seq).changes === 1;
  }

  /** The cursors of the current members who may see message `seq` (joined before it), in joining order. */
  receiptCursors(threadId: number, seq: number): Array<{ userId: number; readSeq: number; deliveredSeq: number }> {
    return this.receiptCursorsStatement.all(threadId, seq);
  }

  setSettings(threadId: number, userId: number, muted: boolean, label: string | null): void {
    this.setSettingsStatement.run(muted ? 1 : 0, label, threadId, userId);
  }

  /**
   * Users who are or were members of a thread this one is or was a member of
   * (left or not, on either side): whose keys this one may need to verify
   * the history it holds.
   */
  usersEverSharingThreads(userId: number): number[] {
    return this.everSharedUsersStatement.all(userId, userId);
  }

  /** Users who share at least one thread with this one (both current members). */
  usersSharingThreads(userId: number): number[] {
    return this.sharedUsersStatement.all(userId, userId);
  }
}
