/**
 * The badge of a notification in one statement: unreadCount
 * (ports/visibility.ts) summed over the user's memberships, muted threads
 * left out (they send nothing, so they add nothing to the number on the
 * icon). The same arithmetic as the threads list's unread — the seqs
 * (start, end] after the read cursor within what the member may see, less
 * the change rows among them (the difference of the running `uncounted` at
 * the two ends, one lookup by the unique (thread_id, seq) index each, none
 * when the thread has no change rows) — but nothing per member of a thread:
 * its cost is the user's memberships, whatever the size of their groups.
 */

const START = 'max(m.read_seq, m.joined_seq)';
const END = 'coalesce(m.left_seq, t.last_seq)';

/** The thread's change rows up to and including `seq`. */
function uncountedAt(seq: string): string {
  return `CASE WHEN t.uncounted = 0 OR ${seq} <= 0 THEN 0 WHEN ${seq} >= t.last_seq THEN t.uncounted
          ELSE coalesce((SELECT u.uncounted FROM messages u WHERE u.thread_id = t.id AND u.seq = ${seq}), 0) END`;
}

/** One parameter: the user's id. One row, one column: the badge. */
export const BADGE_SQL = `SELECT coalesce(sum(CASE WHEN ${START} >= ${END} THEN 0
         ELSE max(0, (${END} - ${START}) - ((${uncountedAt(END)}) - (${uncountedAt(START)}))) END), 0) AS badge
    FROM thread_members m JOIN threads t ON t.id = m.thread_id
   WHERE m.user_id = ? AND m.muted = 0`;
