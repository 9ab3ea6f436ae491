/**
 * Replays (review L1): the server may deliver a signed message again at
 * another seq; the signature binds thread, sender device and client_msg_id,
 * so the same triple at a second seq is the same message replayed. Remembered
 * for this run only, the newest `perThread` per thread.
 */
export class ReplayGuard {
  private readonly seen = new Map<number, Map<string, number>>();

  constructor(private readonly perThread = 10_000) {}

  /**
   * True when this (sender device, client_msg_id) was seen in the thread at a
   * lower seq: the first place is the original (a history page may bring it
   * after the copy, then the copy was given as `ok` already: it cannot be taken back).
   */
  isReplay(threadId: number, senderDevice: number, clientMsgId: string, seq: number): boolean {
    let thread = this.seen.get(threadId);
    if (!thread) {
      thread = new Map();
      this.seen.set(threadId, thread);
    }
    const key = `${senderDevice}:${clientMsgId}`;
    const first = thread.get(key);
    if (first !== undefined && first < seq) return true;
    thread.set(key, seq);
    if (thread.size > this.perThread) thread.delete(thread.keys().next().value as string);
    return false;
  }
}
