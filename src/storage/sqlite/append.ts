import { randomUUID } from 'node:crypto';
import type { MessageKind, MessageRow } from '../repositories/messages.js';
import { anyPushPlatform } from '../ports/push.js';
import type { PushPlatforms } from '../repositories/push.js';
import type { Store } from '../store.js';
import type { MessageChange, StoredMessage } from '../ports/messaging.js';
import type { ThreadEvent } from '../ports/threads.js';
import { type MemberCursors, NOTHING_UNCOUNTED, type Uncounted, unreadCount, unreadRange, visibleRange } from '../ports/visibility.js';
import type { UserThreadRow } from '../repositories/threads.js';

/**
 * The write every message takes, user-sent, system or change: next seq, row,
 * inbox rows, push rows (not for system messages nor change rows), the
 * sender's own read cursor. Runs inside the caller's transaction, so the seq
 * is assigned in the transaction that stores the message (design.md, point 1).
 */

export interface AppendSettings {
  readonly maxMessages: number;
  /** Groups with more members write no inbox rows (read diffusion). */
  readonly readDiffusionAbove: number;
  /** The push providers configured: devices registered with another get no notifications queued. */
  readonly push: PushPlatforms;
}

export interface MessageInput {
  readonly threadId: number;
  readonly senderUserId: number;
  readonly senderDeviceId: number;
  readonly clientMsgId: string;
  readonly kind: MessageKind;
  readonly bodyJson: string;
  /** What the message carries: messages.attachments, and one attachment_refs row per upload id. */
  readonly attachments?: { readonly json: string; readonly uploadIds: readonly string[] } | undefined;
  readonly replyTo?: number | undefined;
  /** JSON text of the user ids mentioned. */
  readonly mentionsJson?: string | null | undefined;
  /** A change row: the message it changes, and what. */
  readonly change?: { readonly targetId: number; readonly change: MessageChange } | undefined;
  readonly now: number;
}

/** What storing a message needs to know of its thread, read in the same transaction. */
export interface ThreadState {
  readonly last_seq: number;
  /** Current members: above `readDiffusionAbove` no inbox rows are written. */
  readonly member_count: number;
  /** Change rows so far: a change row counts itself in, a message carries it as it is. */
  readonly uncounted: number;
}

/**
 * Stores the message with the thread's next seq. Undefined when the sending
 * device already used this client id: nothing is stored, and the caller looks
 * up the message stored the first time (idempotent send).
 */
export function insertMessage(store: Store, settings: AppendSettings, input: MessageInput, thread: ThreadState): StoredMessage | undefined {
  const seq = thread.last_seq + 1;
  const { change } = input;
  const uncounted = change ? thread.uncounted + 1 : thread.uncounted;
  const changeJson = change ? JSON.stringify(change.change) : null;
  const mentionsJson = input.mentionsJson ?? null;
  const id = store.messages.insert({
    threadId: input.threadId,
    seq,
    senderUserId: input.senderUserId,
    senderDeviceId: input.senderDeviceId,
    clientMsgId: input.clientMsgId,
    kind: input.kind,
    body: input.bodyJson,
    attachments: input.attachments?.json ?? null,
    replyTo: input.replyTo ?? null,
    mentions: mentionsJson,
    change: change && changeJson !== null ? { targetId: change.targetId, json: changeJson } : null,
    uncounted,
    now: input.now,
  });
  if (id === undefined) return undefined;
  // Written only when the message itself was (a resend stored nothing above): who may read an upload follows from these rows.
  if (input.attachments) store.messages.addRefs(input.threadId, seq, input.attachments.uploadIds);
  // A change row is no activity of the thread (the list's order and last message stay) and is never unread.
  if (change) store.threads.setLastChange(input.threadId, seq, uncounted);
  else store.threads.setLastSeq(input.threadId, seq, input.now);
  if (thread.member_count <= settings.readDiffusionAbove) {
    const message = { id, thread_id: input.threadId, seq, sender_device_id: input.senderDeviceId, created_at: input.now };
    for (const deviceId of store.inbox.add(message, settings.maxMessages)) store.inbox.overflow(deviceId);
  }
  // Offline devices with a push token learn of it by a notification (system messages and changes make none); the push worker finds them.
  if (input.kind !== 'system' && !change && anyPushPlatform(settings.push)) {
    const message = { id, threadId: input.threadId, senderUserId: input.senderUserId, createdAt: input.now };
    store.push.noteThread(message);
    // Mute does not silence a mention: those members' devices are queued now (repositories/push.ts).
    if (mentionsJson !== null) store.push.queueMentions(message, mentionsJson, settings.push);
  }
  // Whoever writes has read what came before.
  store.threads.advanceRead(input.threadId, input.senderUserId, seq);
  return {
    id,
    threadId: input.threadId,
    seq,
    senderUserId: input.senderUserId,
    senderDeviceId: input.senderDeviceId,
    clientMsgId: input.clientMsgId,
    kind: input.kind,
    bodyJson: input.bodyJson,
    createdAt: input.now,
    attachmentsJson: input.attachments?.json ?? null,
    replyTo: input.replyTo ?? null,
    mentionsJson,
    editedAt: null,
    deletedAt: null,
    reactionsJson: null,
    targetId: change?.targetId ?? null,
    change: change?.change ?? null,
  };
}

/** A system message (member added, renamed, …): its body says what happened, in JSON. */
export function insertSystemMessage(
  store: Store,
  settings: AppendSettings,
  actor: { readonly userId: number; readonly deviceId: number },
  threadId: number,
  event: ThreadEvent,
  now: number,
): StoredMessage {
  const thread = store.threads.findById(threadId);
  if (!thread) throw new Error(`thread ${threadId} does not exist`);
  const input = {
    threadId,
    senderUserId: actor.userId,
    senderDeviceId: actor.deviceId,
    clientMsgId: `system:${randomUUID()}`,
    kind: 'system' as const,
    bodyJson: JSON.stringify(event),
    now,
  };
  const stored = insertMessage(store, settings, input, { last_seq: thread.last_seq, member_count: store.threads.memberCount(threadId), uncounted: thread.uncounted });
  // A fresh UUID cannot have been used before.
  if (!stored) throw new Error(`system message ${input.clientMsgId} collided`);
  return stored;
}

/** The one row → message mapper: every port hands messages out in this shape. */
export function toStoredMessage(row: MessageRow): StoredMessage {
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
    attachmentsJson: row.attachments,
    replyTo: row.reply_to,
    mentionsJson: row.mentions,
    editedAt: row.edited_at,
    deletedAt: row.deleted_at,
    reactionsJson: row.reactions,
    targetId: row.target_id,
    change: row.change === null ? null : (JSON.parse(row.change) as MessageChange),
  };
}

// A membership row's cursors, for the one rule in ports/visibility.ts (SQLite rows are snake_case).
export function seenRange(row: { readonly joined_seq: number; readonly left_seq: number | null }, lastSeq: number): { from: number; to: number } {
  return visibleRange({ joinedSeq: row.joined_seq, leftSeq: row.left_seq }, lastSeq);
}

/** Unread of a thread list row: its uncounted columns are read with it (UserThreadRow). */
export function unreadOf(row: UserThreadRow): number {
  return unreadCount(cursorsOf(row), row.last_seq, uncountedOf(row));
}

export function uncountedOf(row: Pick<UserThreadRow, 'uncounted_start' | 'uncounted_end'>): Uncounted {
  return { atStart: row.uncounted_start, atEnd: row.uncounted_end };
}

function cursorsOf(row: { readonly joined_seq: number; readonly left_seq: number | null; readonly read_seq: number }): MemberCursors {
  return { joinedSeq: row.joined_seq, leftSeq: row.left_seq, readSeq: row.read_seq };
}

/**
 * Unread of a membership whose read cursor is `readSeq` now (markRead):
 * looks up the change rows at the range's ends, nothing when the thread has none.
 */
export function unreadAfterRead(
  store: Pick<Store, 'messages'>,
  membership: { readonly thread_id: number; readonly joined_seq: number; readonly left_seq: number | null; readonly read_seq: number },
  thread: { readonly last_seq: number; readonly uncounted: number },
): number {
  const cursors = cursorsOf(membership);
  const { start, end } = unreadRange(cursors, thread.last_seq);
  if (thread.uncounted === 0 || start >= end) return unreadCount(cursors, thread.last_seq, NOTHING_UNCOUNTED);
  const atEnd = end === thread.last_seq ? thread.uncounted : store.messages.uncountedAt(membership.thread_id, end);
  return unreadCount(cursors, thread.last_seq, { atStart: store.messages.uncountedAt(membership.thread_id, start), atEnd });
}
