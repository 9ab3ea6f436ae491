import type { RevocationReason } from '../storage/ports/account-events.js';
import type { MessageKind, StoredMessage as Message } from '../storage/ports/messaging.js';
import type { StoredDeviceKeys } from '../storage/ports/keys.js';
import type { MemberRole, ThreadKind } from '../storage/ports/threads.js';

// One definition of each, next to the rows (the schema's CHECK constraints list the same values).
export type { MemberRole, MessageKind, RevocationReason, ThreadKind };
// A message is the storage port's StoredMessage: one shape from the row mapper (storage/sqlite) to the encoder (protocol's MessageFields).
export type { Message };

/** Domain values the services hand upwards. The transport and session map them to the wire. */

export interface User {
  readonly id: number;
  readonly username: string;
  readonly displayName: string;
}

export interface Device {
  readonly id: number;
  readonly userId: number;
  readonly name: string;
  readonly platform: string;
  readonly createdAt: number;
  readonly lastSeenAt: number | null;
}

/** Who is making a request: the device whose token was presented, and its user. */
export interface Principal {
  readonly user: User;
  readonly deviceId: number;
}

/** A device's token stopped working (or every device's of a user), as recorded in the database. */
export interface Revocation {
  /** The account event's id: they grow in commit order. */
  readonly id: number;
  readonly userId: number;
  /** Null: every device of the user (disabled, deleted). */
  readonly deviceId: number | null;
  readonly reason: RevocationReason;
}

/**
 * Told of revocations after they commit, so that the live connections they
 * concern are closed: at once by the process that made them, and by a
 * process that reads them from the database later. The same revocation may
 * come more than once; acting on it checks what holds now.
 */
export interface RevocationListener {
  revoked(revocations: readonly Revocation[]): void;
}


export interface Member {
  readonly user: User;
  readonly role: MemberRole;
  readonly joinedAt: number;
  /** The member's read and delivered cursors: what receipts would have said (for ticks after a reload). */
  readonly readSeq: number;
  readonly deliveredSeq: number;
}

/** A thread as one user sees it. */
export interface ThreadView {
  readonly id: number;
  readonly kind: ThreadKind;
  readonly title: string | null;
  readonly createdAt: number;
  readonly lastSeq: number;
  readonly lastMessageAt: number | null;
  /** The last message this user may see, if any. */
  readonly lastMessage: Message | null;
  readonly role: MemberRole;
  /** False once the user left or was removed: history stays readable up to leftSeq. */
  readonly member: boolean;
  readonly leftSeq: number | null;
  readonly readSeq: number;
  readonly unread: number;
  readonly muted: boolean;
  readonly label: string | null;
  readonly memberCount: number;
  /** Only end-to-end encrypted messages are taken. */
  readonly e2eRequired: boolean;
  /** Direct threads: the other user. */
  readonly peer: User | null;
}

export type ReceiptKind = 'delivered' | 'read';

export interface PresenceView {
  readonly userId: number;
  readonly online: boolean;
  readonly lastActiveAt: number | null;
}

/**
 * Where the services announce what live devices must learn. Implemented above
 * (session layer: encodes each event once and publishes it through the channel
 * registry), so that services know neither frames nor sockets.
 */
export interface Fanout {
  /** A committed message, to every live device following its thread. */
  message(message: Message): void;
  /**
   * A member's delivered or read cursor moved to `seq`: to the live devices of
   * each of `audience` (the authors of the messages it passed; for `read`, the
   * reader too), on whatever node they are, whether or not they follow the thread.
   */
  receipt(threadId: number, userId: number, kind: ReceiptKind, seq: number, audience: readonly number[]): void;
  /**
   * Membership changed: live devices of `joined` start following the thread,
   * those of `left` stop (after this thread's last event). `joinedBy`: the
   * message that made `joined` members (group_created, members_added),
   * already announced to the thread: it goes to `joined`'s live devices with
   * the change itself, since on several nodes their node's subscription to the
   * thread is still on its way when the message is published.
   */
  membership(threadId: number, joined: readonly number[], left: readonly number[], joinedBy?: Message): void;
  typing(threadId: number, userId: number, deviceId: number): void;
  /** To each of `audience` (online users allowed to see it). */
  presence(presence: PresenceView, audience: Iterable<number>): void;
  /** A device's keys changed (published, rotated, approved, revoked): to the live devices of each of `audience`. */
  keysChanged(keys: DeviceKeys, audience: Iterable<number>): void;
  /** A user's account key was set or replaced: to the live devices of each of `audience`. */
  accountChanged(account: AccountKey, audience: Iterable<number>): void;
  /** A device message was stored for `deviceId`: to that device's live connections. */
  deviceMessage(deviceId: number, message: DeviceMessage): void;
  /** The user deleted messages for themselves: to every live connection of theirs (the one that asked included). */
  hidden(userId: number, items: readonly HiddenMessage[]): void;
}

/** A message deleted for one user only ("delete for me"); `id` grows with each one: the `hidden` request's cursor. */
export interface HiddenMessage {
  readonly id: number;
  readonly threadId: number;
  readonly messageId: number;
}

/** A device's public keys for end-to-end encryption (base64): the port's record as it is. */
export type DeviceKeys = StoredDeviceKeys;

/** A user's account key (the account's identity, base64) and its self-signature. */
export interface AccountKey {
  readonly userId: number;
  readonly accountKey: string;
  readonly signature: string;
}

/** An opaque payload from one device of a user to another of the same user. */
export interface DeviceMessage {
  readonly id: number;
  readonly fromDevice: number;
  /** base64 */
  readonly payload: string;
  readonly createdAt: number;
}

/** Told when a stored message queued push notifications (after its commit): the push worker's wake-up call. */
export interface PushQueueListener {
  pushQueued(): void;
}
