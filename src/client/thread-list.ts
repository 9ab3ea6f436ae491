import type { MessageJson, ThreadJson } from '../protocol/frames.js';

/**
 * The client's picture of the user's threads: refreshed from the server's
 * `threads` and `thread` replies, kept current between them by the messages
 * and read receipts that arrive. Unread counts follow the server's rule: a
 * message counts when someone else sent it after the user's read cursor.
 */
export class ThreadList {
  private readonly threads = new Map<number, ThreadJson>();

  replaceAll(threads: readonly ThreadJson[]): void {
    this.threads.clear();
    for (const thread of threads) this.threads.set(thread.id, thread);
  }

  put(thread: ThreadJson): void {
    this.threads.set(thread.id, thread);
  }

  get(threadId: number): ThreadJson | undefined {
    return this.threads.get(threadId);
  }

  /** Most recent activity first. */
  all(): ThreadJson[] {
    const activity = (thread: ThreadJson): number => thread.last_message?.created_at ?? thread.created_at;
    return [...this.threads.values()].sort((a, b) => activity(b) - activity(a) || b.id - a.id);
  }

  totalUnread(): number {
    let total = 0;
    for (const thread of this.threads.values()) total += thread.unread;
    return total;
  }

  /** A message the app was given; returns the updated thread, or undefined when the thread is not known yet. */
  messageArrived(message: MessageJson, ownUserId: number): ThreadJson | undefined {
    const thread = this.threads.get(message.thread_id);
    if (!thread || message.seq <= thread.last_seq) return thread;
    const own = message.sender_id === ownUserId;
    const updated: ThreadJson = {
      ...thread,
      last_seq: message.seq,
      last_message: message,
      // The server moves the sender's read cursor with each message they send.
      read_seq: own ? message.seq : thread.read_seq,
      unread: own ? 0 : message.seq > thread.read_seq ? thread.unread + 1 : thread.unread,
    };
    this.threads.set(thread.id, updated);
    return updated;
  }

  /**
   * A change message (edit, delete, reaction) was given: the thread's last seq
   * moves, its unread count does not (change messages are never counted), and
   * its last message is replaced when that is the one changed (`target`: its new
   * state). Returns the thread when its last message changed.
   */
  changeArrived(row: MessageJson, ownUserId: number, target: MessageJson | undefined): ThreadJson | undefined {
    const thread = this.threads.get(row.thread_id);
    if (!thread || row.seq <= thread.last_seq) return undefined;
    const replaced = target !== undefined && thread.last_message?.id === target.id;
    const updated: ThreadJson = {
      ...thread,
      last_seq: row.seq,
      ...(replaced ? { last_message: target } : {}),
      // Like a send, the sender's own change moves their read cursor (and leaves nothing unread below it).
      ...(row.sender_id === ownUserId ? { read_seq: row.seq, unread: 0 } : {}),
    };
    this.threads.set(thread.id, updated);
    return replaced ? updated : undefined;
  }

  /**
   * The user's read cursor moved. Returns the updated thread and whether its
   * unread count is exact (only when everything is read; otherwise ask the server).
   */
  readMoved(threadId: number, readSeq: number, unread?: number): { thread: ThreadJson; exact: boolean } | undefined {
    const thread = this.threads.get(threadId);
    if (!thread) return undefined;
    if (readSeq < thread.read_seq) return { thread, exact: true };
    const exact = unread !== undefined || readSeq >= thread.last_seq;
    const updated: ThreadJson = { ...thread, read_seq: readSeq, unread: unread ?? (exact ? 0 : thread.unread) };
    this.threads.set(threadId, updated);
    return { thread: updated, exact };
  }
}
