import { RECEIPT_AUTHORS_SPAN } from '../ports/messaging.js';

/**
 * A cursor move's receipt authors (CursorOutcome.authors) as an SQL array
 * expression, for the statement that moves the cursor: the senders of the
 * messages in (after, upTo] — only its last RECEIPT_AUTHORS_SPAN seqs — who
 * are current members of the thread, the mover left out, system messages and
 * change rows neither; ascending. The arguments are SQL expressions.
 */
export function receiptAuthorsSql(sql: { threadId: string; mover: string; after: string; upTo: string }): string {
  return `ARRAY(
         SELECT a.user_id FROM thread_members a
          WHERE a.thread_id = ${sql.threadId} AND a.left_seq IS NULL AND a.user_id <> ${sql.mover}
            AND a.user_id IN (SELECT x.sender_user_id FROM messages x
                               WHERE x.thread_id = ${sql.threadId} AND x.seq > greatest(${sql.after}, ${sql.upTo} - ${RECEIPT_AUTHORS_SPAN})
                                 AND x.seq <= ${sql.upTo} AND x.kind <> 'system' AND x.change IS NULL)
          ORDER BY 1)`;
}
