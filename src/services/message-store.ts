import type { StoredMessage } from '../storage/ports/messaging.js';
import type { PushPlatforms } from '../storage/ports/push.js';
import type { ThreadSummary } from '../storage/ports/threads.js';
import type { Message } from './types.js';

/**
 * Pure helpers of the message path. Storing a message is the storage port's
 * unit of work now (src/storage/sqlite/append.ts for SQLite).
 */

export interface MessageStoreSettings {
  readonly maxMessages: number;
  /** Groups with more members write no inbox rows (read diffusion). */
  readonly readDiffusionAbove: number;
  /** The push providers configured: devices registered with another get no notifications queued. */
  readonly push: PushPlatforms;
}

/** A stored message as the services see it. */
export function toMessage(stored: StoredMessage): Message {
  return {
    id: stored.id,
    threadId: stored.threadId,
    seq: stored.seq,
    senderUserId: stored.senderUserId,
    senderDeviceId: stored.senderDeviceId,
    clientMsgId: stored.clientMsgId,
    kind: stored.kind,
    bodyJson: stored.bodyJson,
    createdAt: stored.createdAt,
  };
}

type MemberCursors = Pick<ThreadSummary, 'joinedSeq' | 'leftSeq' | 'readSeq'>;

/** The seqs a member may see: (from, to]. A former member sees up to where they left. */
export function visibleRange(membership: Pick<MemberCursors, 'joinedSeq' | 'leftSeq'>, lastSeq: number): { from: number; to: number } {
  return { from: membership.joinedSeq, to: membership.leftSeq ?? lastSeq };
}

/**
 * Messages from others after the member's read cursor, within what they may
 * see. Derived from cursors, never stored, and counted without reading a
 * message: storing a message moves the sender's read cursor to it, so nothing
 * of their own is ever after it.
 */
export function unreadCount(membership: MemberCursors, lastSeq: number): number {
  const { from, to } = visibleRange(membership, lastSeq);
  return Math.max(0, to - Math.max(membership.readSeq, from));
}
