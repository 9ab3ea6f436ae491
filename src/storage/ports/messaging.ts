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
  /** The body as JSON text, exactly as the client sent it (`null` for attachments without a body). */
  readonly bodyJson: string;
  readonly createdAt: number;
  /** messages.attachments: the AttachmentJson list as JSON text, as the service built it; null for none. */
  readonly attachmentsJson: string | null;
}

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

export interface AppendMessageInput {
  readonly threadId: number;
  readonly senderUserId: number;
  readonly senderDeviceId: number;
  readonly clientMsgId: string;
  readonly content: SendContent;
  readonly bodyJson: string;
  /**
   * The files the message carries: `json` is stored in messages.attachments as
   * it is; one attachment_refs (upload_id, thread_id, seq) row per upload id is
   * written in the same unit as the message. A duplicate (resend) writes neither.
   */
  readonly attachments?: { readonly json: string; readonly uploadIds: readonly string[] };
  readonly now: number;
  /** messages.require_e2e: plaintext is refused in every thread. */
  readonly requireE2eEverywhere: boolean;
}

/** What a message is: a client's plaintext, an end-to-end envelope, or a notice the server wrote. */
export type MessageKind = 'text' | 'e2e' | 'system';

/** Why a send stored nothing. Checked in this order, after the token (a `signed_out` outcome wins over all); a resend of a stored message wins over the rest. */
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
  | { readonly reason: 'not_member' };

export type AppendOutcome =
  | { readonly kind: 'stored'; readonly message: StoredMessage }
  /** The same (device, client_msg_id) in the same thread was stored before: that message, nothing new stored. */
  | { readonly kind: 'duplicate'; readonly message: StoredMessage }
  /** The device's token no longer works (revoked, its user disabled or deleted, or no such device). */
  | SignedOut
  | ({ readonly kind: 'refused' } & AppendRefusal);

/** A cursor move: refused when the user was never in the thread. `moved`: it moved and the user is still a member (the thread is told). */
export type CursorOutcome<T> = ({ readonly kind: 'done'; readonly moved: boolean } & T) | { readonly kind: 'refused'; readonly reason: 'no_thread' };

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
   * push rows, the sender's read cursor. Resolves after commit.
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
  /** Unread messages over all the user's threads. */
  totalUnread(userId: number): Promise<number>;
  /** Whether the user is, was, or never was a member of the thread. */
  membership(threadId: number, userId: number): Promise<Membership>;
}
