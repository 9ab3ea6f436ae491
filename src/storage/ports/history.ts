import type { StoredMessage } from './messaging.js';

/**
 * Where a page starts. `after` with `changes`: change rows too (edits, deletes, reactions, as sync gives
 * them), for a client closing a gap in the live stream, which must not miss a change.
 */
export type HistoryAnchor =
  | { readonly before: number }
  | { readonly after: number; readonly changes?: boolean }
  | { readonly around: number }
  | { readonly latest: true };

/** A page of the seqs (from, to] the user may see: `from` joined, `to` left or the thread's last. */
export interface StoredPage {
  readonly messages: StoredMessage[];
  readonly from: number;
  readonly to: number;
  /**
   * Whether a row such a page would hold (the same filter: messages only, or with `changes` change rows
   * too; never a hidden one) lies before the first returned / after the last, within (from, to], read in
   * the same snapshot as the page. An empty page looks from its anchor.
   */
  readonly moreBefore: boolean;
  readonly moreAfter: boolean;
}

export interface SyncInput {
  readonly userId: number;
  readonly deviceId: number;
  /** The device's own cursors (thread id → highest seq it has); others start from the device's acks. */
  readonly cursors: ReadonlyMap<number, number> | undefined;
  readonly pageMax: number;
}

export interface StoredSync {
  readonly threadId: number;
  readonly lastSeq: number;
  readonly messages: StoredMessage[];
  /** A row sync would give lies after the last returned (not merely a seq: hidden rows at the end are no more). */
  readonly hasMore: boolean;
}

/**
 * Reads of stored messages for history, jump and sync (HistoryService). Every read is a consistent snapshot.
 * History and jump show messages in their latest state (edited, deleted, reactions) and never a change row
 * nor a message the user hid; sync carries change rows too, so a device that was away learns of changes.
 */
export interface HistoryStorage {
  /**
   * Up to `size` messages at the anchor within what the user may see (change rows and the user's hidden
   * messages left out: a page is `size` messages, not rows); undefined if the user was never in the thread.
   */
  page(input: { readonly userId: number; readonly threadId: number; readonly anchor: HistoryAnchor; readonly size: number }): Promise<StoredPage | undefined>;
  /**
   * A message's thread and seq with the range the user may see of that thread; undefined if there is no such
   * message, it is a change row or hidden by the user, or the user was never in its thread. With `anyRow`, a
   * change row or a message the user hid is found too: a change request needs its target's thread whatever
   * the user hid (a resend is acked again, an admin deletes what they hid) and leaves the refusal of a change
   * row to the unit of work (`not_changeable`).
   */
  locate(
    userId: number,
    messageId: number,
    options?: { readonly anyRow?: boolean },
  ): Promise<{ readonly threadId: number; readonly seq: number; readonly from: number; readonly to: number } | undefined>;
  /**
   * What the device lacks, thread by thread (a page each: change rows included, the user's hidden
   * messages and their changes not); clears its
   * inbox-overflow flag, committed before the read, so that a message stored
   * meanwhile is in the answer or in the inbox (or both), never in neither.
   */
  sync(input: SyncInput): Promise<StoredSync[]>;
}
