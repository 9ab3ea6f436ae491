import { randomUUID } from 'node:crypto';
import { ChatError } from '../errors.js';
import type { MessageRow } from '../storage/repositories/messages.js';
import type { MembershipRow, ThreadRow } from '../storage/repositories/threads.js';
import type { Store } from '../storage/store.js';
import type { Message, MessageKind } from './types.js';

/**
 * The write every message takes, user-sent or system: next seq, row, inbox rows,
 * the sender's own read cursor. Runs inside the caller's transaction, so the seq
 * is assigned in the transaction that stores the message (design.md, point 1).
 */

export interface InboxSettings {
  readonly maxMessages: number;
  /** Groups with more members write no inbox rows (read diffusion). */
  readonly readDiffusionAbove: number;
}

export interface MessageInput {
  readonly threadId: number;
  readonly senderUserId: number;
  readonly senderDeviceId: number;
  readonly clientMsgId: string;
  readonly kind: MessageKind;
  readonly bodyJson: string;
  readonly now: number;
}

export function storeMessage(store: Store, settings: InboxSettings, input: MessageInput): Message {
  const seq = store.threads.nextSeq(input.threadId, input.now);
  const id = store.messages.insert({
    threadId: input.threadId,
    seq,
    senderUserId: input.senderUserId,
    senderDeviceId: input.senderDeviceId,
    clientMsgId: input.clientMsgId,
    kind: input.kind,
    body: input.bodyJson,
    now: input.now,
  });
  if (store.threads.memberCount(input.threadId) <= settings.readDiffusionAbove) {
    const message = { id, thread_id: input.threadId, seq, sender_device_id: input.senderDeviceId, created_at: input.now };
    for (const deviceId of store.inbox.add(message, settings.maxMessages)) store.inbox.overflow(deviceId);
  }
  // Whoever writes has read what came before.
  store.threads.advanceRead(input.threadId, input.senderUserId, seq);
  return { ...input, id, seq, createdAt: input.now };
}

/** A system message (member added, renamed, …): its body says what happened, in JSON. */
export function storeSystemMessage(
  store: Store,
  settings: InboxSettings,
  actor: { readonly userId: number; readonly deviceId: number },
  threadId: number,
  event: Record<string, unknown>,
  now: number,
): Message {
  return storeMessage(store, settings, {
    threadId,
    senderUserId: actor.userId,
    senderDeviceId: actor.deviceId,
    clientMsgId: `system:${randomUUID()}`,
    kind: 'system',
    bodyJson: JSON.stringify(event),
    now,
  });
}

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

/** Messages from others after the member's read cursor, within what they may see. Derived, never stored. */
export function unreadCount(store: Store, threadId: number, membership: MemberCursors, lastSeq: number, userId: number): number {
  const { from, to } = visibleRange(membership, lastSeq);
  return store.messages.countFromOthers(threadId, Math.max(membership.read_seq, from), to, userId);
}

/**
 * The thread and the caller's membership, or not_found: a thread the user was
 * never in is indistinguishable from one that does not exist.
 */
export function findMembership(store: Store, threadId: number, userId: number): { thread: ThreadRow; membership: MembershipRow } {
  const membership = store.threads.membership(threadId, userId);
  const thread = membership ? store.threads.findById(threadId) : undefined;
  if (!membership || !thread) throw new ChatError('not_found', `no thread ${threadId}`);
  return { thread, membership };
}

/** As findMembership, for actions only current members may take. */
export function findActiveMembership(store: Store, threadId: number, userId: number): { thread: ThreadRow; membership: MembershipRow } {
  const found = findMembership(store, threadId, userId);
  if (found.membership.left_seq !== null) throw new ChatError('forbidden', `you are no longer a member of thread ${threadId}`);
  return found;
}
