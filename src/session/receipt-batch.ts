import type { ReceiptKind } from '../services/types.js';

/** Runs `run` once, after the work of the current event-loop turn (setImmediate; tests run it by hand). */
export type TurnScheduler = (run: () => void) => void;

/** One receipt to publish: a member's cursor of `kind` at `seq`, for each user of `audience`. */
export interface CoalescedReceipt {
  readonly threadId: number;
  readonly userId: number;
  readonly kind: ReceiptKind;
  readonly seq: number;
  /** Distinct user ids, in the order they were first named. */
  readonly audience: readonly number[];
}

interface Pending {
  readonly threadId: number;
  readonly userId: number;
  readonly kind: ReceiptKind;
  seq: number;
  readonly audience: Set<number>;
}

/**
 * Receipts of one event-loop turn, coalesced per (thread, user, kind) to the
 * highest seq with the union of their audiences (protocol 4): a device that
 * acks a burst of messages, or several devices of one user acking together,
 * make one frame per audience user, not one per ack. A receipt's seq is
 * cumulative, so the highest one says everything the lower ones did.
 * `flush` hands each key over once at the turn's end, in the order the keys
 * first came.
 */
export class ReceiptBatch {
  private readonly pending = new Map<string, Pending>();
  private scheduled = false;

  constructor(
    private readonly flush: (receipt: CoalescedReceipt) => void,
    private readonly schedule: TurnScheduler = (run) => setImmediate(run),
  ) {}

  add(threadId: number, userId: number, kind: ReceiptKind, seq: number, audience: readonly number[]): void {
    if (audience.length === 0) return;
    const key = `${threadId}:${userId}:${kind}`;
    const entry = this.pending.get(key);
    if (entry) {
      entry.seq = Math.max(entry.seq, seq);
      for (const id of audience) entry.audience.add(id);
    } else {
      this.pending.set(key, { threadId, userId, kind, seq, audience: new Set(audience) });
    }
    if (this.scheduled) return;
    this.scheduled = true;
    this.schedule(() => this.publish());
  }

  private publish(): void {
    this.scheduled = false;
    const entries = [...this.pending.values()];
    this.pending.clear();
    for (const { threadId, userId, kind, seq, audience } of entries) this.flush({ threadId, userId, kind, seq, audience: [...audience] });
  }
}
