/**
 * What a member may see of a thread, and what they have not read: the one
 * rule, pure, on plain cursors. In storage/ports so that both sides use it:
 * the engines (to clamp cursors and count unread inside their units) and the
 * services (to build thread views), since storage imports no services.
 */

/** A user's cursors in one thread (seqs). */
export interface MemberCursors {
  /** The thread's last seq when they joined: they see what came after. */
  readonly joinedSeq: number;
  /** Where they left, or null while a member. */
  readonly leftSeq: number | null;
  readonly readSeq: number;
}

/** The seqs a member may see: (from, to]. A former member sees up to where they left. */
export function visibleRange(member: Pick<MemberCursors, 'joinedSeq' | 'leftSeq'>, lastSeq: number): { from: number; to: number } {
  return { from: member.joinedSeq, to: member.leftSeq ?? lastSeq };
}

/**
 * Change rows (edits, deletes, reactions: never unread) counted up to each end
 * of the unread range (start, end] of unreadRange(): `atStart` is the
 * `uncounted` of the row at `start` (0 for seq 0), `atEnd` that of the row at
 * `end` (threads.uncounted when `end` is the thread's last seq). Engines look
 * them up (one indexed read, none when the thread's uncounted is 0).
 */
export interface Uncounted {
  readonly atStart: number;
  readonly atEnd: number;
}

/** No change rows in the range (a thread whose uncounted is 0). */
export const NOTHING_UNCOUNTED: Uncounted = { atStart: 0, atEnd: 0 };

/** The seqs (start, end] whose messages may be unread: after the read cursor, within what the member may see. Empty when start >= end. */
export function unreadRange(member: MemberCursors, lastSeq: number): { start: number; end: number } {
  const { from, to } = visibleRange(member, lastSeq);
  return { start: Math.max(member.readSeq, from), end: to };
}

/**
 * Messages from others after the member's read cursor, within what they may
 * see, change rows left out. Derived from cursors, never stored, and counted
 * without reading a message: storing a message (or a change) moves the
 * sender's read cursor to it, so nothing of their own is ever after it.
 */
export function unreadCount(member: MemberCursors, lastSeq: number, uncounted: Uncounted): number {
  const { start, end } = unreadRange(member, lastSeq);
  return Math.max(0, end - start - (uncounted.atEnd - uncounted.atStart));
}
