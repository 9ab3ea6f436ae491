import type { SignedOut } from './token.js';

/** A stored message, as every engine returns it. */
export interface StoredMessage {
  readonly id: number;
  readonly threadId: number;
  readonly seq: number;
  readonly senderUserId: number;
  readonly senderDeviceId: number;
  readonly clientMsgId: string;
  readonly kind: MessageKind;
  /**
   * The body as JSON text, exactly as the client sent it (`null` for attachments
   * without a body). A content message shows its latest state: the latest
   * edit's body, or `null` once deleted for everyone. A change row: the new body
   * for an edit (`null` once its target is deleted), `null` for the others.
   */
  readonly bodyJson: string;
  readonly createdAt: number;
  /** messages.attachments: the AttachmentJson list as JSON text, as the service built it; null for none (and once deleted). */
  readonly attachmentsJson: string | null;
  /** The message (same thread) this one replies to; null for none. Content messages only. */
  readonly replyTo: number | null;
  /**
   * The user ids mentioned, as compact JSON text (`[3,7]`), spliced into frames
   * as it is, like attachmentsJson; null for none (and once deleted). On a
   * target: the latest edit's. On an edit row: that edit's.
   */
  readonly mentionsJson: string | null;
  /** When the content message was last edited (ms); null if never. */
  readonly editedAt: number | null;
  /** When the content message was deleted for everyone (ms): then bodyJson is `null` and attachments, mentions, reactions are null. */
  readonly deletedAt: number | null;
  /** The reactions as compact JSON text, `[{"emoji":"👍","user_ids":[3,7]}]` in first-reacted order; null for none. */
  readonly reactionsJson: string | null;
  /** Change rows only: the message changed. */
  readonly targetId: number | null;
  /** Change rows only: what changed (the wire's ChangeJson is this plus `message_id: targetId`); null for every other message. */
  readonly change: MessageChange | null;
}

/** What a change row did to its target (messages.change, JSON). */
export type MessageChange =
  | { readonly type: 'edit' }
  | { readonly type: 'delete' }
  | { readonly type: 'reaction'; readonly emoji: string; readonly on: boolean };

/** At most this many distinct emoji per user on one message (MSG-SPEC §1); the next is refused `too_many_reactions`. */
export const MAX_REACTIONS_PER_USER = 20;

/** What the content of a send requires of the thread, checked in the unit. */
export type SendContent =
  | { readonly kind: 'text' }
  /**
   * An end-to-end encrypted message. `sealedTo`: the device ids its envelope
   * carries a key for, compared as a set with the thread's current approved
   * devices; 'invalid': the service found the envelope unreadable (its error is
   * the service's to report, with the same precedence as the unit's refusals).
   */
  | { readonly kind: 'e2e'; readonly sealedTo: readonly number[] | 'invalid' };

/** Who appends, and what every append is checked against: the same for a send and a change. */
interface AppendCommon {
  readonly threadId: number;
  readonly senderUserId: number;
  readonly senderDeviceId: number;
  /** Idempotency: (senderDeviceId, clientMsgId) stores one row, a send or a change. */
  readonly clientMsgId: string;
  readonly now: number;
  /** messages.require_e2e: plaintext is refused in every thread. */
  readonly requireE2eEverywhere: boolean;
}

/** A new content message. */
export interface SendInput extends AppendCommon {
  readonly change?: undefined;
  readonly content: SendContent;
  readonly bodyJson: string;
  /**
   * The files the message carries: `json` is stored in messages.attachments as
   * it is; one attachment_refs (upload_id, thread_id, seq) row per upload id is
   * written in the same unit as the message. A duplicate (resend) writes neither.
   */
  readonly attachments?: { readonly json: string; readonly uploadIds: readonly string[] };
  /** A content message of this thread the sender may see (checked in the unit: `reply_invalid`; deleted for everyone: `message_deleted`). */
  readonly replyTo?: number;
  /** User ids, distinct (the protocol checks count and form); each must be a current member (checked in the unit: `mention_not_member`). */
  readonly mentions?: readonly number[];
}

/**
 * A change to a message of `threadId` (the target's own thread: the service
 * learns it by HistoryStorage.locate), appended as a change row in the same
 * unit as a send (next seq, inbox rows, idempotency, the sender's read cursor;
 * no push rows, threads.last_message_at unmoved), with the target updated to
 * its latest state in that unit. The sender must be a current member and the
 * target a content message (`text`/`e2e`) of the thread within what the
 * sender may see.
 */
export interface ChangeInput extends AppendCommon {
  readonly change: ChangeRequest;
}

export type ChangeRequest =
  /**
   * By the author only, within `editWindowMs` of the target's created_at (0:
   * no limit), not of a deleted message. `content` must be the target's kind
   * and is checked exactly like a send's (encryption_required,
   * envelope_invalid, device_unapproved, devices_changed). Sets the target's
   * body, mentions (none when absent) and edited_at.
   */
  | {
      readonly type: 'edit';
      readonly targetId: number;
      readonly content: SendContent;
      readonly bodyJson: string;
      readonly mentions?: readonly number[];
      readonly editWindowMs: number;
    }
  /**
   * By the author, or by an owner/admin of a group (the unit reads the
   * actor's role). Erases the target (body `null`, attachments, mentions,
   * reactions NULL, deleted_at), its edit rows' bodies, its attachment_refs.
   * An already deleted target: `unchanged`.
   */
  | { readonly type: 'delete'; readonly targetId: number }
  /** The sender's reaction `emoji` on or off: the target's reactions rewritten in the unit. Nothing to change: `unchanged`. */
  | { readonly type: 'reaction'; readonly targetId: number; readonly emoji: string; readonly on: boolean };

/** What appendMessage takes: a send, or a change to a stored message. */
export type AppendMessageInput = SendInput | ChangeInput;

/** What a message is: a client's plaintext, an end-to-end envelope, or a notice the server wrote. */
export type MessageKind = 'text' | 'e2e' | 'system';

/**
 * Why an append stored nothing. Checked in this order, after the token (a
 * `signed_out` outcome wins over all); a resend of a stored message wins over
 * the rest. A change: membership, then the target (no_message,
 * not_changeable, message_deleted, not_author, edit_window_passed,
 * kind_mismatch, unseen_by_members), then the edit's content as a send's, then mentions, then
 * too_many_reactions. A send: membership, content, reply_invalid,
 * message_deleted (of the reply's target), mention_not_member, attachment_gone.
 */
export type AppendRefusal =
  /** This (device, client_msg_id) was used for a message in another thread. */
  | { readonly reason: 'client_id_in_other_thread' }
  | { readonly reason: 'encryption_required' }
  | { readonly reason: 'envelope_invalid' }
  /** The sending device is not among the thread's approved devices (no keys, or not approved). */
  | { readonly reason: 'device_unapproved' }
  | { readonly reason: 'devices_changed'; readonly missing: number[]; readonly extra: number[] }
  /** An attached upload is gone or not complete any more (deleted or collected since the service checked it): nothing stored. */
  | { readonly reason: 'attachment_gone'; readonly uploadId: string }
  /** The sender was never a member (or the thread does not exist). */
  | { readonly reason: 'no_thread' }
  /** The sender left or was removed. */
  | { readonly reason: 'not_member' }
  /** A change's target: no such message, not in this thread, or outside what the sender may see. */
  | { readonly reason: 'no_message' }
  /** A change's target is a system message or a change row. */
  | { readonly reason: 'not_changeable' }
  /** An edit or reaction on a message deleted for everyone, or a send replying to one (errors.ts: message_deleted). */
  | { readonly reason: 'message_deleted' }
  /** An edit of someone else's message; a delete by someone neither its author nor a group owner/admin. */
  | { readonly reason: 'not_author' }
  /** An edit after the window: `windowMs` is the window the unit applied. */
  | { readonly reason: 'edit_window_passed'; readonly windowMs: number }
  /** An edit's content is not of the target's kind (text for e2e or e2e for text). */
  | { readonly reason: 'kind_mismatch' }
  /**
   * An edit of a message some current member cannot see (they joined after it): the edit, a message of its
   * own, would reach them with the text that history keeps from them.
   */
  | { readonly reason: 'unseen_by_members' }
  /** A send's reply_to is not a content message of this thread the sender may see. */
  | { readonly reason: 'reply_invalid' }
  /** A mentioned user is not a current member of the thread (the first such one). */
  | { readonly reason: 'mention_not_member'; readonly userId: number }
  /** The sender already has MAX_REACTIONS_PER_USER distinct emoji on the message. */
  | { readonly reason: 'too_many_reactions' };

export type AppendOutcome =
  | { readonly kind: 'stored'; readonly message: StoredMessage }
  /** The same (device, client_msg_id) in the same thread was stored before: that message, nothing new stored. */
  | { readonly kind: 'duplicate'; readonly message: StoredMessage }
  /** A change that changes nothing (a reaction already so, a delete of a deleted message): nothing stored, answered `ok`. */
  | { readonly kind: 'unchanged' }
  /** The device's token no longer works (revoked, its user disabled or deleted, or no such device). */
  | SignedOut
  | ({ readonly kind: 'refused' } & AppendRefusal);

/** A message one user deleted for themselves ("delete for me"): `id` orders them, the cursor of hiddenAfter. */
export interface StoredHidden {
  readonly id: number;
  readonly threadId: number;
  readonly messageId: number;
}

export type HideOutcome =
  /** Hidden now, or already (`already`: the row stored before, nothing new stored). */
  | { readonly kind: 'hidden'; readonly hidden: StoredHidden; readonly already: boolean }
  /** No such message, a change row, or outside what the user may see (a former member sees up to where they left). */
  | { readonly kind: 'refused'; readonly reason: 'no_message' };

/**
 * How many seqs, at most, a cursor move's authors are read from: the last
 * RECEIPT_AUTHORS_SPAN of the move. The read runs in the unit that moves the
 * cursor (inside SQLite's group commit, in front of every send), so a
 * catch-up past 200,000 messages must not scan them all; the authors of the
 * older messages learn how far the member got from `receipts` or
 * `thread_get` instead of a receipt.
 */
export const RECEIPT_AUTHORS_SPAN = 1000;

/**
 * A cursor move: refused when the user was never in the thread. `moved`: it
 * moved and the user is still a member (a receipt is due). `authors`: who the
 * receipt is for, read in the unit that moved it: the distinct senders of the
 * messages the move passed (old < seq <= new, only the last
 * RECEIPT_AUTHORS_SPAN seqs of it) who are current members of the thread (a
 * former member learns nothing of the group's progress), the mover left out,
 * and neither system messages (the server's notices) nor change rows
 * (receipts say nothing of edits and reactions) count; ascending; empty when
 * `moved` is false.
 */
export type CursorOutcome<T> =
  | ({ readonly kind: 'done'; readonly moved: boolean; readonly authors: readonly number[] } & T)
  | { readonly kind: 'refused'; readonly reason: 'no_thread' };

/**
 * Who has received and read message `seq` (the `receipts` request), from the
 * members' cursors: the current members who may see it (joined before it),
 * its author left out, each in one list, every list in joining order.
 * Refused: the asker is not a current member (`no_thread`), or there is no
 * message `seq` they may see (`no_message`).
 */
export type ReceiptsOutcome =
  | { readonly kind: 'found'; readonly read: number[]; readonly delivered: number[]; readonly pending: number[] }
  | { readonly kind: 'refused'; readonly reason: 'no_thread' | 'no_message' };

/** A member's cursors, as receiptsOf reads them (in joining order). */
export interface MemberReceiptCursors {
  readonly userId: number;
  readonly readSeq: number;
  readonly deliveredSeq: number;
}

/** The one rule of the `receipts` lists, for both engines: read (read cursor at or past seq), else delivered, else pending. */
export function receiptLists(members: readonly MemberReceiptCursors[], seq: number): ReceiptsOutcome & { kind: 'found' } {
  const lists = { kind: 'found' as const, read: [] as number[], delivered: [] as number[], pending: [] as number[] };
  for (const member of members) {
    if (member.readSeq >= seq) lists.read.push(member.userId);
    else if (member.deliveredSeq >= seq) lists.delivered.push(member.userId);
    else lists.pending.push(member.userId);
  }
  return lists;
}

export type Membership = 'none' | 'member' | 'left';

/**
 * The storage the message path needs (MessagingService): the send as one unit
 * of work, delivery and read cursors, unread totals. Every method is async and
 * resolves only after its work has committed: a PostgreSQL implementation runs
 * the same named units over the network, an SQLite one group-commits them.
 */
export interface MessagingStorage {
  /**
   * The send, atomically: token check, the sender's membership, the content's
   * precondition, the thread's next seq (1, 2, … with no gaps), the row, its
   * idempotency, inbox rows for devices not live (none above read diffusion),
   * push rows, the sender's read cursor. Resolves after commit. A change
   * (ChangeInput) is the same unit plus the target's update, minus push rows.
   */
  appendMessage(input: AppendMessageInput): Promise<AppendOutcome>;
  /** The device received up to `seq` (clamped to what the user may see): its cursor, its inbox rows acked, the user's delivered cursor. */
  markDelivered(input: { readonly userId: number; readonly deviceId: number; readonly threadId: number; readonly seq: number }): Promise<CursorOutcome<{ readonly seq: number }>>;
  /** The user read up to `seq` (clamped, forward only), with the thread's and the user's unread counts after it. */
  markRead(input: {
    readonly userId: number;
    readonly threadId: number;
    readonly seq: number;
  }): Promise<CursorOutcome<{ readonly readSeq: number; readonly unread: number; readonly totalUnread: number }>>;
  /** Who has received and read message `seq` of the thread, asked by `requesterUserId` (ReceiptsOutcome). */
  receiptsOf(threadId: number, seq: number, requesterUserId: number): Promise<ReceiptsOutcome>;
  /** Unread messages over all the user's threads. */
  totalUnread(userId: number): Promise<number>;
  /** Whether the user is, was, or never was a member of the thread. */
  membership(threadId: number, userId: number): Promise<Membership>;
  /** "Delete for me": history, jump, search and sync leave the message out for this user from now on. */
  hideMessage(input: { readonly userId: number; readonly messageId: number; readonly now: number }): Promise<HideOutcome>;
  /** The user's hidden messages with id > after, oldest first, at most `limit`; `more`: others follow. */
  hiddenAfter(userId: number, after: number, limit: number): Promise<{ readonly items: StoredHidden[]; readonly more: boolean }>;
}
