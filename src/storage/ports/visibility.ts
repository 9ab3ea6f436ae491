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
 * Messages from others after the member's read cursor, within what they may
 * see. Derived from cursors, never stored, and counted without reading a
 * message: storing a message moves the sender's read cursor to it, so nothing
 * of their own is ever after it.
 */
export function unreadCount(member: MemberCursors, lastSeq: number): number {
  const { from, to } = visibleRange(member, lastSeq);
  return Math.max(0, to - Math.max(member.readSeq, from));
}
