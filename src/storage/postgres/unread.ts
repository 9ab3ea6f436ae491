/**
 * unreadCount (ports/visibility.ts) in SQL, over thread_members `m` joined
 * with its thread `t`: the seqs (start, end] after the read cursor within
 * what the member may see, less the change rows among them — the difference
 * of the running `uncounted` at the two ends. Each end is one lookup by the
 * unique (thread_id, seq) index, made only when the thread has change rows at
 * all and the range is not empty; the end at the thread's last seq is the
 * thread's own count.
 */

/** unreadRange's start, for a read cursor `read` (an expression; m.read_seq by default). */
export function unreadStart(read = 'm.read_seq'): string {
  return `greatest(${read}, m.joined_seq)`;
}

/** unreadRange's end. */
export const UNREAD_END = 'coalesce(m.left_seq, t.last_seq)';

/** The thread's change rows up to and including `seq` (0 at seq 0, and in a thread without any). */
export function uncountedAt(seq: string): string {
  return `CASE WHEN t.uncounted = 0 OR ${seq} <= 0 THEN 0 WHEN ${seq} >= t.last_seq THEN t.uncounted
          ELSE coalesce((SELECT u.uncounted FROM messages u WHERE u.thread_id = t.id AND u.seq = ${seq}), 0) END`;
}

/** The member's unread count, change rows left out (0 when nothing is after the cursor: no lookup then). */
export function unreadSql(read = 'm.read_seq'): string {
  const start = unreadStart(read);
  return `CASE WHEN ${start} >= ${UNREAD_END} THEN 0
          ELSE greatest(0, (${UNREAD_END} - ${start}) - ((${uncountedAt(UNREAD_END)}) - (${uncountedAt(start)}))) END`;
}

/** Both ends' uncounted values as unreadCount takes them ({atStart, atEnd}), as two columns. */
export function uncountedColumns(read = 'm.read_seq'): string {
  const start = unreadStart(read);
  return `CASE WHEN ${start} >= ${UNREAD_END} THEN 0 ELSE ${uncountedAt(start)} END AS uncounted_start,
          CASE WHEN ${start} >= ${UNREAD_END} THEN 0 ELSE ${uncountedAt(UNREAD_END)} END AS uncounted_end`;
}
