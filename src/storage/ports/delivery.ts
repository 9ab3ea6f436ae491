import type { StoredMessage } from './messaging.js';
import type { PushPlatforms } from './push.js';

/** The rules a going-offline write applies, as plain data (they are the DeliveryService's, from config). */
export interface OfflineRules {
  /** Groups with more current members than this write no inbox rows (read diffusion): none are backfilled either. */
  readonly readDiffusionAbove: number;
  /** An inbox past this many rows is dropped and the device flagged to sync by cursors. */
  readonly maxMessages: number;
  /** Providers configured: with any, a device going offline gets a notification queued per thread it has unacknowledged messages in. */
  readonly push: PushPlatforms;
  /** Unix ms: the time the queued notifications carry. */
  readonly now: number;
}

export interface OfflineOutcome {
  /** The device was marked live (had something to hand over). */
  readonly wasLive: boolean;
  /** The handover took the inbox past `maxMessages`: it was dropped and the device flagged. */
  readonly overflowed: boolean;
  /** Notifications were queued (the push worker should wake). */
  readonly pushesQueued: boolean;
}

export interface InboxPage {
  readonly messages: StoredMessage[];
  readonly overflowed: boolean;
  /**
   * When `messages` is empty (the inbox is through): the threads the device's user
   * is a current member of, from the same snapshot, for the connection to
   * follow live. Undefined otherwise.
   */
  readonly followedThreadIds: number[] | undefined;
}

/**
 * The DeliveryService's storage: a device's offline inbox and its live mark.
 * Every write is a named unit of work, atomic, resolving only after commit;
 * reads resolve with committed state. A device marked live gets no inbox rows
 * as messages are stored; going offline backfills what it did not acknowledge.
 */
export interface DeliveryStorage {
  /** Whether the database marks the device live: a going-offline write is owed (a read, not a unit). */
  isLive(deviceId: number): Promise<boolean>;
  /** Marks the device live after the newest stored message (idempotent: an already-live device keeps its older mark, so nothing since goes unrecorded). */
  goLive(deviceId: number): Promise<void>;
  /**
   * The device is no longer live: what it got live and did not acknowledge goes
   * to its inbox (the same recipient rules as storing a message), notifications
   * are queued per `rules.push`, and an inbox past the bound is dropped and
   * flagged. Unmarks it. A device not marked live: writes nothing. Units for
   * one device are serialised by the engine, so two of them (the old link's
   * close and the new link's open, on two nodes) hand over once: the second
   * sees the first's result (`wasLive: false`).
   */
  goOffline(deviceId: number, rules: OfflineRules): Promise<OfflineOutcome>;
  /** At start-up: goOffline for every device still marked live (the last process stopped without closing them), in one unit. Resolves to their number. */
  recoverLiveDevices(rules: OfflineRules): Promise<number>;
  /** Drops the inboxes holding rows older than `cutoff` (Unix ms) and flags those devices to sync; resolves to them. */
  expireInboxes(cutoff: number): Promise<number[]>;
  /**
   * A page of the device's inbox after message id `afterId`, oldest first (seq
   * order within each thread), at most `limit`, and the overflow flag, read
   * together (one snapshot): an empty page with `overflowed: false` means
   * nothing was waiting and nothing was dropped. The last (empty) page also
   * names the threads to follow: membership and inbox from one snapshot, so a
   * thread joined after it is announced after it (a members-changed event).
   */
  inboxPage(deviceId: number, afterId: number, limit: number): Promise<InboxPage>;
  /** Whether the device's inbox overflowed and was dropped (it must sync by cursors). */
  inboxOverflowed(deviceId: number): Promise<boolean>;
}
