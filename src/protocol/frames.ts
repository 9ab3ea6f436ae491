import type { ErrorCode } from '../errors.js';

/**
 * Every WebSocket frame, both ways, as JSON text. Documented in docs/protocol.md.
 * Client frames are requests: each has an `id` and gets exactly one reply with
 * that id. Server events have no `id`.
 */

export const PROTOCOL_VERSION = 4;

/** A request id chosen by the client; echoed in the one reply the request gets. */
export type RequestId = string;

/** A user to act on: by id or by username. */
export type UserRefJson = { readonly user_id: number } | { readonly username: string };

// ---- client → server ----

interface Request<T extends string> {
  readonly type: T;
  readonly id: RequestId;
}

export interface AuthFrame extends Request<'auth'> {
  readonly token: string;
}
export type PingFrame = Request<'ping'>;
export interface SendFrame extends Request<'send'> {
  readonly thread_id: number;
  readonly client_msg_id: string;
  readonly kind: 'text' | 'e2e';
  /** Any JSON value, kept as the text the client sent; `null` only when the message carries attachments (the body may then be absent). */
  readonly body_json: string;
  /** Upload ids (1-10, distinct), in the order the client gave them; undefined: none. */
  readonly attachments: readonly string[] | undefined;
  /** The id of an earlier content message of the same thread this one answers. */
  readonly reply_to: number | undefined;
  /** Members of the thread the message mentions (user ids, distinct, at most 50). */
  readonly mentions: readonly number[] | undefined;
}
/** Replace a message's body (its author, within messages.edit_window_seconds): appended as a change message. */
export interface EditFrame extends Request<'edit'> {
  readonly message_id: number;
  readonly client_msg_id: string;
  /** The target's own kind: an e2e message is edited with a new envelope. */
  readonly kind: 'text' | 'e2e';
  readonly body_json: string;
  readonly mentions: readonly number[] | undefined;
}
/** Delete for everyone (a change message: the body is erased) or for me (hidden from the user's own views). */
export interface DeleteFrame extends Request<'delete'> {
  readonly message_id: number;
  readonly for: 'everyone' | 'me';
  /** Required for everyone (the change message's idempotency key); ignored for me. */
  readonly client_msg_id: string | undefined;
}
/** Add (on) or take back (off) the user's reaction with one emoji. */
export interface ReactFrame extends Request<'react'> {
  readonly message_id: number;
  readonly emoji: string;
  readonly on: boolean;
  readonly client_msg_id: string;
}
/** The user's messages deleted for them, after a cursor (a device that was away catches up). */
export interface HiddenFrame extends Request<'hidden'> {
  readonly after: number;
  readonly limit: number;
}
export interface SearchFrame extends Request<'search'> {
  readonly query: string;
  readonly thread_id: number | undefined;
  readonly sender_id: number | undefined;
  /** created_at bounds, ms since the epoch: after < created_at < before. */
  readonly after: number | undefined;
  readonly before: number | undefined;
  /** next_cursor of the previous page. */
  readonly cursor: string | undefined;
  readonly limit: number;
}
/** Find people by the start of a username or display name (accounts.user_search). */
export interface UsersSearchFrame extends Request<'users_search'> {
  readonly query: string;
  readonly limit: number;
}
export interface DeliveredFrame extends Request<'delivered'> {
  readonly thread_id: number;
  readonly seq: number;
}
export interface ReadFrame extends Request<'read'> {
  readonly thread_id: number;
  readonly seq: number;
}
/** Who has received and read message `seq` ("message info"), answered from the members' cursors (protocol 4). */
export interface ReceiptsFrame extends Request<'receipts'> {
  readonly thread_id: number;
  readonly seq: number;
}
export interface HistoryFrame extends Request<'history'> {
  readonly thread_id: number;
  /** `changes` (with `after` only): change messages too, for closing a gap in the live stream. */
  readonly anchor: { readonly before: number } | { readonly after: number; readonly changes: boolean } | { readonly around: number } | { readonly latest: true };
  readonly limit: number;
}
export interface JumpFrame extends Request<'jump'> {
  readonly message_id: number;
  readonly limit: number;
}
export interface SyncFrame extends Request<'sync'> {
  /** thread id → the highest seq the device has; absent threads use the server's record of its acks. */
  readonly cursors: ReadonlyMap<number, number> | undefined;
}
export type ThreadsFrame = Request<'threads'>;
export interface ThreadGetFrame extends Request<'thread_get'> {
  readonly thread_id: number;
}
export interface DirectOpenFrame extends Request<'direct_open'> {
  readonly user: UserRefJson;
}
export interface GroupCreateFrame extends Request<'group_create'> {
  readonly title: string;
  readonly members: readonly UserRefJson[];
  /** The group takes end-to-end encrypted messages only. */
  readonly e2e_required: boolean;
}
export interface GroupAddFrame extends Request<'group_add'> {
  readonly thread_id: number;
  readonly members: readonly UserRefJson[];
}
export interface GroupRemoveFrame extends Request<'group_remove'> {
  readonly thread_id: number;
  readonly user: UserRefJson;
}
export interface GroupLeaveFrame extends Request<'group_leave'> {
  readonly thread_id: number;
}
export interface GroupRenameFrame extends Request<'group_rename'> {
  readonly thread_id: number;
  readonly title: string;
}
export interface GroupRoleFrame extends Request<'group_role'> {
  readonly thread_id: number;
  readonly user: UserRefJson;
  readonly role: 'owner' | 'admin' | 'member';
}
export interface ThreadSettingsFrame extends Request<'thread_settings'> {
  readonly thread_id: number;
  readonly muted: boolean | undefined;
  /** null clears the label; undefined leaves it. */
  readonly label: string | null | undefined;
}
export interface TypingFrame extends Request<'typing'> {
  readonly thread_id: number;
}
export interface PresenceFrame extends Request<'presence'> {
  readonly user_ids: readonly number[];
}
export type ContactsFrame = Request<'contacts'>;
export interface ContactAddFrame extends Request<'contact_add'> {
  readonly user: UserRefJson;
}
export interface ContactRemoveFrame extends Request<'contact_remove'> {
  readonly user_id: number;
}

export interface PushRegisterFrame extends Request<'push_register'> {
  readonly platform: 'apns' | 'fcm' | 'webpush';
  /** webpush: the JSON of the browser's PushSubscription (subscription.toJSON()). */
  readonly token: string;
  /** APNs: the app's bundle id, when not the server's configured one. */
  readonly topic: string | undefined;
}
export type PushUnregisterFrame = Request<'push_unregister'>;
export interface KeysPublishFrame extends Request<'keys_publish'> {
  /** base64: X25519 public key (32 bytes), Ed25519 public key (32 bytes); signatures 64 bytes (docs/protocol.md). */
  readonly enc_key: string;
  readonly sign_key: string;
  /** Grows by one at every rotation of enc_key; from 1. */
  readonly counter: number;
  /** sign_key's signature of ["chatd-device-v2", user_id, device_id, enc_key, sign_key, counter]. */
  readonly signature: string;
  /** The account key's signature of ["chatd-device-cert-v2", …]; undefined while the device is pending. */
  readonly account_signature: string | undefined;
}
export interface AccountPublishFrame extends Request<'account_publish'> {
  /** base64 Ed25519 public key (32 bytes). */
  readonly account_key: string;
  /** account_key's signature of ["chatd-account-v2", user_id, account_key]. */
  readonly signature: string;
  /** Replace a different account key (every device holding it was lost). */
  readonly reset: boolean;
  /** The user's password: needed for a reset from a device that is not approved. */
  readonly password: string | undefined;
}
export interface DeviceApproveFrame extends Request<'device_approve'> {
  readonly device_id: number;
  readonly account_signature: string;
}
export interface KeysGetFrame extends Request<'keys_get'> {
  /** Undefined: every user who shares a thread with the caller, and the caller. */
  readonly user_ids: readonly number[] | undefined;
}
export interface DeviceSendFrame extends Request<'device_send'> {
  readonly device_id: number;
  /** base64, opaque to the server. */
  readonly payload: string;
}
export interface DeviceMessagesFrame extends Request<'device_messages'> {
  /** Messages with ids above this one. */
  readonly after: number;
  readonly limit: number;
}
export interface DeviceMessagesAckFrame extends Request<'device_messages_ack'> {
  readonly up_to: number;
}
export interface RequireE2eFrame extends Request<'require_e2e'> {
  readonly thread_id: number;
}

export type ClientFrame =
  | AuthFrame
  | PingFrame
  | SendFrame
  | EditFrame
  | DeleteFrame
  | ReactFrame
  | HiddenFrame
  | DeliveredFrame
  | ReadFrame
  | ReceiptsFrame
  | HistoryFrame
  | JumpFrame
  | SearchFrame
  | SyncFrame
  | ThreadsFrame
  | ThreadGetFrame
  | DirectOpenFrame
  | GroupCreateFrame
  | GroupAddFrame
  | GroupRemoveFrame
  | GroupLeaveFrame
  | GroupRenameFrame
  | GroupRoleFrame
  | ThreadSettingsFrame
  | TypingFrame
  | PresenceFrame
  | ContactsFrame
  | ContactAddFrame
  | ContactRemoveFrame
  | UsersSearchFrame
  | PushRegisterFrame
  | PushUnregisterFrame
  | KeysPublishFrame
  | AccountPublishFrame
  | DeviceApproveFrame
  | KeysGetFrame
  | DeviceSendFrame
  | DeviceMessagesFrame
  | DeviceMessagesAckFrame
  | RequireE2eFrame;
export type ClientFrameType = ClientFrame['type'];

// ---- shapes inside server frames ----

export interface UserJson {
  readonly id: number;
  readonly username: string;
  readonly display_name: string;
}

/**
 * A file a message carries (docs/attachments.md). In a plaintext thread the
 * server fills every field from its own record of the upload: `size`, `mime`,
 * `sha256` are of the bytes it serves (never what a client claimed). In an
 * end-to-end thread only `id` is outside the envelope; name, type, key and
 * hash are inside it, and the server knows nothing else.
 */
export interface AttachmentJson {
  /** The upload's id: GET /v1/attachments/{id}. */
  readonly id: string;
  readonly name?: string;
  readonly size?: number;
  readonly mime?: string;
  readonly sha256?: string;
  readonly width?: number;
  readonly height?: number;
  /** Milliseconds, as the sender's client measured it. */
  readonly duration?: number;
  /** A WebP preview: GET /v1/attachments/{id}/thumbnail. */
  readonly thumbnail?: { readonly width: number; readonly height: number };
}

export interface MessageJson {
  readonly id: number;
  readonly thread_id: number;
  readonly seq: number;
  readonly sender_id: number;
  readonly sender_device_id: number;
  readonly client_msg_id: string;
  readonly kind: 'text' | 'e2e' | 'system';
  /** null when the message carries attachments and no text. */
  readonly body: unknown;
  readonly created_at: number;
  /** Omitted when the message carries none. */
  readonly attachments?: readonly AttachmentJson[];
  /** The message this one answers (an id in the same thread). */
  readonly reply_to?: number;
  /** User ids the message mentions. */
  readonly mentions?: readonly number[];
  /** When it was last edited (its body is the latest). */
  readonly edited_at?: number;
  /** Deleted for everyone: body null, no attachments, reactions or mentions; the seq stays. */
  readonly deleted?: true;
  /** Who reacted with what, in the order each emoji was first used. */
  readonly reactions?: readonly ReactionJson[];
  /** Present on a change message: what it changed. Edits carry the new body, kind and mentions. */
  readonly change?: ChangeJson;
}

export interface ReactionJson {
  readonly emoji: string;
  readonly user_ids: readonly number[];
}

export type ChangeJson =
  | { readonly type: 'edit'; readonly message_id: number }
  | { readonly type: 'delete'; readonly message_id: number }
  | { readonly type: 'reaction'; readonly message_id: number; readonly emoji: string; readonly on: boolean };

/** A message deleted for one user only: `id` is the cursor for the `hidden` request. */
export interface HiddenJson {
  readonly id: number;
  readonly thread_id: number;
  readonly message_id: number;
}

export interface SearchResultJson {
  readonly message: MessageJson;
  /** Plain text around the first hit (… where cut). */
  readonly snippet: string;
  /** [start, end) UTF-16 offsets of the hits in snippet. */
  readonly highlights: ReadonlyArray<readonly [number, number]>;
}

export interface ThreadJson {
  readonly id: number;
  readonly kind: 'direct' | 'group';
  readonly title: string | null;
  readonly peer: UserJson | null;
  readonly created_at: number;
  readonly last_seq: number;
  readonly last_message: MessageJson | null;
  readonly role: 'owner' | 'admin' | 'member';
  readonly member: boolean;
  readonly left_seq: number | null;
  readonly read_seq: number;
  readonly unread: number;
  readonly muted: boolean;
  readonly label: string | null;
  readonly member_count: number;
  /** The thread takes end-to-end encrypted messages only. */
  readonly e2e_required: boolean;
}

export interface MemberJson {
  readonly user: UserJson;
  readonly role: 'owner' | 'admin' | 'member';
  readonly joined_at: number;
  /** The member's read cursor and delivered cursor (the highest over their devices). */
  readonly read_seq: number;
  readonly delivered_seq: number;
}

export interface PresenceJson {
  readonly user_id: number;
  readonly online: boolean;
  readonly last_active_at: number | null;
}

// ---- server → client: replies ----

export interface WelcomeFrame {
  readonly type: 'welcome';
  readonly id: RequestId;
  readonly protocol: number;
  /** Random per database; a new value means the server's data was replaced (restored backup): drop cursors and sync afresh. */
  readonly epoch: string;
  readonly user: UserJson;
  readonly device_id: number;
  readonly heartbeat_interval_ms: number;
  readonly heartbeat_timeout_ms: number;
  readonly limits: {
    readonly max_frame_bytes: number;
    readonly max_body_bytes: number;
    readonly frames_per_second: number;
    readonly history_page_max: number;
    readonly max_group_members: number;
    /** limits.user_sends_per_second: `send`s a second for the user across all their devices (bursts of twice as many). */
    readonly user_sends_per_second: number;
    /** limits.max_connections_per_device: connections one device may hold at once. */
    readonly max_connections_per_device: number;
  };
}
export interface PongFrame {
  readonly type: 'pong';
  readonly id: RequestId;
}
export interface OkFrame {
  readonly type: 'ok';
  readonly id: RequestId;
}
export interface AckFrame {
  readonly type: 'ack';
  readonly id: RequestId;
  readonly thread_id: number;
  readonly seq: number;
  readonly message_id: number;
  readonly client_msg_id: string;
  readonly created_at: number;
  readonly duplicate: boolean;
}
export interface DeliveredReplyFrame {
  readonly type: 'delivered';
  readonly id: RequestId;
  readonly thread_id: number;
  readonly seq: number;
}
/**
 * The answer to `receipts`: the current members who may see message `seq`,
 * its author left out, each in one list by their cursors: `read` (read cursor
 * at or past `seq`), `delivered` (a device of theirs received it, not read
 * yet), `pending` (neither). User ids, in joining order.
 */
export interface ReceiptsReplyFrame {
  readonly type: 'receipts';
  readonly id: RequestId;
  readonly thread_id: number;
  readonly seq: number;
  readonly read: readonly number[];
  readonly delivered: readonly number[];
  readonly pending: readonly number[];
}
export interface ReadStateFrame {
  readonly type: 'read_state';
  readonly id: RequestId;
  readonly thread_id: number;
  readonly read_seq: number;
  readonly unread: number;
  readonly total_unread: number;
}
export interface MessagesFrame {
  readonly type: 'messages';
  readonly id: RequestId;
  readonly thread_id: number;
  readonly messages: readonly MessageJson[];
  readonly has_more_before: boolean;
  readonly has_more_after: boolean;
}
export interface SyncReplyFrame {
  readonly type: 'sync';
  readonly id: RequestId;
  readonly threads: ReadonlyArray<{ readonly thread_id: number; readonly last_seq: number; readonly messages: readonly MessageJson[]; readonly has_more: boolean }>;
}
export interface ThreadsReplyFrame {
  readonly type: 'threads';
  readonly id: RequestId;
  readonly threads: readonly ThreadJson[];
  readonly total_unread: number;
}
export interface ThreadReplyFrame {
  readonly type: 'thread';
  readonly id: RequestId;
  readonly thread: ThreadJson;
  readonly members: readonly MemberJson[];
}
export interface PresenceReplyFrame {
  readonly type: 'presence';
  readonly id: RequestId;
  readonly users: readonly PresenceJson[];
}
export interface ContactsReplyFrame {
  readonly type: 'contacts';
  readonly id: RequestId;
  readonly contacts: ReadonlyArray<{ readonly user: UserJson; readonly added_at: number; readonly presence: PresenceJson | null }>;
}
/** A device's public keys for end-to-end encryption, base64. */
export interface DeviceKeysJson {
  readonly user_id: number;
  readonly device_id: number;
  readonly enc_key: string;
  readonly sign_key: string;
  readonly counter: number;
  readonly signature: string;
  /** The account key's signature of the device's certificate; null: the device is pending (not approved). */
  readonly account_signature: string | null;
  readonly revoked: boolean;
}
/** A user's account key (the account's identity) and its self-signature, base64. */
export interface AccountKeyJson {
  readonly user_id: number;
  readonly account_key: string;
  readonly signature: string;
}
export interface KeysReplyFrame {
  readonly type: 'keys';
  readonly id: RequestId;
  readonly accounts: readonly AccountKeyJson[];
  readonly devices: readonly DeviceKeysJson[];
}
/** A message from another device of the same user; payload base64, opaque to the server. */
export interface DeviceMessageJson {
  readonly id: number;
  readonly from_device: number;
  readonly payload: string;
  readonly created_at: number;
}
export interface DeviceMessagesReplyFrame {
  readonly type: 'device_messages';
  readonly id: RequestId;
  readonly messages: readonly DeviceMessageJson[];
  /** More messages wait after the last one. */
  readonly more: boolean;
}
export interface HiddenReplyFrame {
  readonly type: 'hidden';
  readonly id: RequestId;
  readonly items: readonly HiddenJson[];
  readonly more: boolean;
}
export interface SearchResultsFrame {
  readonly type: 'search_results';
  readonly id: RequestId;
  readonly results: readonly SearchResultJson[];
  /** Pass as `cursor` for the next page; null: no more. */
  readonly next_cursor: string | null;
}
export interface UsersReplyFrame {
  readonly type: 'users';
  readonly id: RequestId;
  readonly users: readonly UserJson[];
}
export interface ErrorFrame {
  readonly type: 'error';
  /** The failed request's id; null when the frame was too broken to have one. */
  readonly id: RequestId | null;
  readonly error: {
    readonly code: ErrorCode;
    readonly message: string;
    readonly retryable: boolean;
    readonly retry_after_ms?: number;
    /** The request field at fault, when one is. */
    readonly field?: string;
    /** devices_changed: devices that must get a sealed key, and devices that must not. */
    readonly missing_devices?: readonly number[];
    readonly extra_devices?: readonly number[];
    /** rate_limited: the config key of the limit that refused. */
    readonly limit?: string;
  };
}

// ---- server → client: events (no id) ----

export interface MessageEvent {
  readonly type: 'message';
  readonly message: MessageJson;
}
/** After the offline inbox has been sent (possibly empty): live traffic follows. */
export interface InboxDoneEvent {
  readonly type: 'inbox_done';
  readonly count: number;
  /** The inbox overflowed and was dropped: send `sync` to catch up by cursors. */
  readonly overflow: boolean;
}
export interface ReceiptEvent {
  readonly type: 'receipt';
  readonly thread_id: number;
  readonly user_id: number;
  readonly kind: 'delivered' | 'read';
  readonly seq: number;
}
export interface TypingEvent {
  readonly type: 'typing';
  readonly thread_id: number;
  readonly user_id: number;
  readonly device_id: number;
}
export interface PresenceEvent extends PresenceJson {
  readonly type: 'presence_update';
}
/** A device's keys changed (new, rotated, approved, revoked): to the owner's devices and everyone sharing a thread with them. */
export interface KeysChangedEvent extends DeviceKeysJson {
  readonly type: 'keys_changed';
}
/** A user's account key was set or replaced (a reset): to the owner's devices and everyone sharing a thread with them. */
export interface AccountChangedEvent extends AccountKeyJson {
  readonly type: 'account_changed';
}
/** Messages the user deleted for themselves (on another device, or this one): to the user's devices. */
export interface HiddenEvent {
  readonly type: 'hidden';
  readonly items: readonly HiddenJson[];
}
/** A device message for this device was stored. */
export interface DeviceMessageEvent {
  readonly type: 'device_message';
  readonly message: DeviceMessageJson;
}

export type ServerFrame =
  | WelcomeFrame
  | PongFrame
  | OkFrame
  | AckFrame
  | DeliveredReplyFrame
  | ReceiptsReplyFrame
  | ReadStateFrame
  | MessagesFrame
  | SearchResultsFrame
  | SyncReplyFrame
  | ThreadsReplyFrame
  | ThreadReplyFrame
  | PresenceReplyFrame
  | ContactsReplyFrame
  | UsersReplyFrame
  | KeysReplyFrame
  | DeviceMessagesReplyFrame
  | HiddenReplyFrame
  | ErrorFrame
  | MessageEvent
  | InboxDoneEvent
  | ReceiptEvent
  | TypingEvent
  | PresenceEvent
  | KeysChangedEvent
  | AccountChangedEvent
  | HiddenEvent
  | DeviceMessageEvent;
