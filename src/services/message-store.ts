import type { MessageRow } from '../storage/repositories/messages.js';
import type { PushPlatforms } from '../storage/repositories/push.js';
import type { MembershipRow } from '../storage/repositories/threads.js';
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

/** A message row as the services see it (the inbox handover still reads rows; it moves to services/delivery.ts). */
export function toMessage(row: MessageRow): Message {
  return {
    id: row.id,
    threadId: row.thread_id,
    seq: row.seq,
    senderUserId: row.sender_user_id,
    senderDeviceId: row.sender_device_id,
    clientMsgId: row.client_msg_id,
    kind: row.kind,
    bodyJson: row.body,
    createdAt: row.created_at,
  };
}

type MemberCursors = Pick<MembershipRow, 'joined_seq' | 'left_seq' | 'read_seq'>;

/** The seqs a member may see: (from, to]. A former member sees up to where they left. */
export function visibleRange(membership: Pick<MembershipRow, 'joined_seq' | 'left_seq'>, lastSeq: number): { from: number; to: number } {
  return { from: membership.joined_seq, to: membership.left_seq ?? lastSeq };
}

/**
 * Messages from others after the member's read cursor, within what they may
 * see. Derived from cursors, never stored, and counted without reading a
 * message: storing a message moves the sender's read cursor to it, so nothing
 * of their own is ever after it.
 */
export function unreadCount(membership: MemberCursors, lastSeq: number): number {
  const { from, to } = visibleRange(membership, lastSeq);
  return Math.max(0, to - Math.max(membership.read_seq, from));
}
