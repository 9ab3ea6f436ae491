import type { MessageReceipts, ReceiptEvent } from '../../src/client/browser.js';

/**
 * How the "Message info" dialog keeps its three lists (Read by, Delivered
 * to, Waiting) in step after asking the server once (`client.receipts`):
 * each `receipt` event of the thread moves one member forward, locally,
 * so a busy group costs no further requests. Tested alone.
 */

/** What a `receipt` event says about one member. */
export type Receipt = Pick<ReceiptEvent, 'user_id' | 'kind' | 'seq'>;

/**
 * Receipts held while the first answer is on its way: the highest seq per
 * member and kind (at most two per member, however many arrive), keyed by
 * `holdReceipt`.
 */
export type HeldReceipts = Map<string, Receipt>;

/**
 * `receipts` after `receipt`, for message `messageSeq`. A receipt that
 * reaches the message (its seq at or past it) moves the member forward only:
 * `read` to Read by, `delivered` from Waiting to Delivered to. A member in
 * none of the lists (the author, or one who joined after the message) is
 * ignored. One who moves goes to the end of the new list. Returns `receipts`
 * itself when nothing changes.
 */
export function receiptsAfter(receipts: MessageReceipts, receipt: Receipt, messageSeq: number): MessageReceipts {
  if (receipt.seq < messageSeq) return receipts;
  const user = receipt.user_id;
  if (receipt.kind === 'read') {
    if (receipts.read.includes(user) || !(receipts.delivered.includes(user) || receipts.pending.includes(user))) return receipts;
    return {
      read: [...receipts.read, user],
      delivered: receipts.delivered.filter((id) => id !== user),
      pending: receipts.pending.filter((id) => id !== user),
    };
  }
  if (!receipts.pending.includes(user)) return receipts;
  return { read: receipts.read, delivered: [...receipts.delivered, user], pending: receipts.pending.filter((id) => id !== user) };
}

/**
 * Keeps `receipt` in `held` (in place: a copy per receipt would cost as much
 * as the group is large), unless one of the same member and kind at the same
 * seq or past it is already there.
 */
export function holdReceipt(held: HeldReceipts, receipt: Receipt): void {
  const key = `${receipt.user_id} ${receipt.kind}`;
  const kept = held.get(key);
  if (!kept || kept.seq < receipt.seq) held.set(key, { user_id: receipt.user_id, kind: receipt.kind, seq: receipt.seq });
}

/** The first answer with the receipts held while it was on its way applied. */
export function receiptsWithHeld(answer: MessageReceipts, held: ReadonlyMap<string, Receipt>, messageSeq: number): MessageReceipts {
  let receipts = answer;
  for (const receipt of held.values()) receipts = receiptsAfter(receipts, receipt, messageSeq);
  return receipts;
}
