import type { PresenceJson, ReceiptEvent, ThreadJson, TypingEvent, UserRefJson } from '../protocol/frames.js';
import type { BackoffOptions } from './backoff.js';
import type { ConnectionEnd } from './connection.js';
import type { AccountStanding, ClientMessage, DeviceRequest, IdentityChange, KeyChange } from './e2e-types.js';
import type { ClientError } from './errors.js';
import type { HistoryProgress, HistoryReceived } from './history-share.js';
import type { StatusChange } from './outbox.js';
import type { WebSocketConstructor } from './socket.js';
import type { Sha256Factory } from './sha256.js';
import type { MessageChange, MessageHidden } from './message-changes.js';
import type { ClientStore } from './store.js';
import type { FetchFunction } from './stream-socket.js';
import type { TransportKind } from './transport-policy.js';

export type { TransportKind } from './transport-policy.js';

/** The `transport` event: the client now reaches the server another way. */
export interface TransportChange {
  readonly transport: TransportKind;
  /** undefined for the first connection. */
  readonly previous: TransportKind | undefined;
}

/**
 * `connecting`: opening the socket and authenticating. `syncing`: connected,
 * catching up on what was missed. `online`: caught up, live. `offline`: the
 * connection was lost; a new attempt follows after `retry_in_ms`. `stopped`:
 * closed by the app, or refused by the server in a way reconnecting cannot fix
 * (`reason` says which: `auth_failed` and `device_revoked` mean log in again).
 */
export type ConnectionState = 'connecting' | 'syncing' | 'online' | 'offline' | 'stopped';

export interface StateChange {
  readonly state: ConnectionState;
  /** Why the last connection ended (for `offline` and `stopped`). */
  readonly reason: ConnectionEnd['reason'] | undefined;
  /** The server's refusal, when there was one (a bad token). */
  readonly error: ClientError | undefined;
  /** For `offline`: when the next attempt starts. */
  readonly retry_in_ms: number | undefined;
  /** Messages waiting to be sent (a new `state` event follows each change of this count). */
  readonly pending: number;
}

export interface ThreadChange {
  readonly thread: ThreadJson;
  /** `new`: first seen; `message`: a new last message; `read`: the user's read cursor or unread count; `changed`: title, members, roles, settings. */
  readonly reason: 'new' | 'message' | 'read' | 'changed';
}

export interface ClientEvents {
  state: StateChange;
  /** The client reaches the server another way than before (`client.transport`): fell back from the WebSocket, or switched back to it. */
  transport: TransportChange;
  /** Every message of every thread, once each, in seq order per thread: live, from the inbox, from sync and gap fills. Encrypted ones decrypted (see `e2e`). */
  message: ClientMessage;
  /** A device of someone this user shares a thread with (or of this user) appeared, rotated, was refused (`changed`) or revoked. */
  keys: KeyChange;
  /** A contact's account key was first seen or changed (show the safety number; `held`: sends wait for `acceptIdentity`). */
  identity: IdentityChange;
  /** A device of this user waits for approval: `approveDevice` (after comparing its fingerprint) or `rejectDevice`. */
  device_request: DeviceRequest;
  /** This device's standing in its account: made the account key, approved, or waiting for approval. */
  account: AccountStanding;
  /**
   * Another device of this user shared message keys with this one (`shareHistory` there), one part at a time:
   * the messages of `threads` now open `ok` (`via: 'history'`) when read again with `history()`. Messages already
   * delivered as `undecryptable` are not delivered again.
   */
  history: HistoryReceived;
  /** A part of a `shareHistory` grant was sent (and recorded: a restart continues after it). */
  history_progress: HistoryProgress;
  /**
   * A message was edited, deleted for everyone, or reacted to (a change message arrived: live, from the inbox or
   * sync). `message`: its new state, when the client held it (from `message`, `history`, `jump`); otherwise reload.
   * Change messages never come as `message` and never count as unread.
   */
  message_changed: MessageChange;
  /** A message was deleted for this user (`deleteMessage(id, { forEveryone: false })` here or on another device): remove it from view. */
  message_hidden: MessageHidden;
  /** One of the app's own sends moved: pending → sent → delivered → read, or failed. */
  status: StatusChange;
  /**
   * A member's delivered or read cursor moved past one of this user's messages, or this user's read cursor moved
   * (another device read). Protocol 4 servers send no others: `receipts()` asks about any message.
   */
  receipt: ReceiptEvent;
  /** Someone is typing (never this device itself). Show it for a few seconds. */
  typing: TypingEvent;
  presence: PresenceJson;
  thread: ThreadChange;
  /** The server's data was replaced (restored backup): drop cached messages, they may be reused. */
  reset: { readonly reason: 'epoch' | 'account' };
  /**
   * A problem the client worked around (a failed ack, a store write); nothing to do but log it. With encryption
   * also the alarms (a ClientError): `key_mismatch`, `untrusted_devices`, `encryption_downgrade`.
   */
  error: Error;
}

export interface ChatClientOptions {
  /** The server's HTTP base URL, e.g. `https://chat.example.org`. */
  readonly server: string;
  /** The device token from login. */
  readonly token: string;
  /** Where the outbox and cursors live between runs; in memory by default. */
  readonly store?: ClientStore;
  /** The WebSocket class; the platform's by default (`ws` in Node, the global one in browsers). */
  readonly WebSocket?: WebSocketConstructor;
  /**
   * The ways to reach the server, in order of preference (docs/client.md, "Transports"). The client falls back
   * to the next when one fails twice in a row, and tries the first again in the background. Default
   * `['websocket', 'stream', 'poll']`.
   */
  readonly transports?: readonly TransportKind[];
  /** While on a fallback, how often the WebSocket (the first of `transports`) is tried again, ms. Default 60 000. */
  readonly websocketRetryMs?: number;
  /** How long a connection may take from opening to the server's welcome before its transport is taken to have failed, ms. Default 10 000. */
  readonly connectTimeoutMs?: number;
  /** The `fetch` the stream and poll transports use; the platform's by default. */
  readonly fetch?: FetchFunction;
  readonly reconnect?: Partial<BackoffOptions>;
  /** How long a request may wait for its reply (and for a connection), ms. Default 15 000. */
  readonly requestTimeoutMs?: number;
  /** How long the connection may stay silent after a ping before it is taken for dead, ms. Default 10 000. */
  readonly heartbeatReplyTimeoutMs?: number;
  /** On a device that starts afresh, how many of each thread's newest unread messages to deliver. Default 200. */
  readonly catchUpLimit?: number;
  /** Sends in flight at once. Default 32. */
  readonly maxInFlight?: number;
  /**
   * End-to-end encryption (docs/e2e.md): the device makes and publishes keys,
   * `e2e` messages are decrypted before the app gets them, and `send` encrypts
   * when asked, when the thread requires it, or when the thread was ever seen
   * encrypted. `'always'`: every send is encrypted and plaintext is refused.
   * Loads libsodium. Default false.
   */
  readonly encryption?: boolean | 'always';
  /** How long previous encryption secrets are kept after a rotation (what was sealed to them still opens), ms. Default 30 days. */
  readonly oldKeysTtlMs?: number;
  /** Most message keys one `shareHistory` grant carries (the newest are kept); also the most a received grant may add. Default 100 000. */
  readonly maxHistoryMessages?: number;
  /** Largest JSON body of one `history` part, bytes (each goes out as one device message). Default 32 768; from 256 to 40 960. */
  readonly historyPartBytes?: number;
  /** SHA-256 for encrypted attachments; a portable one by default (the Node entry passes node:crypto's, faster). */
  readonly sha256?: Sha256Factory;
  /** Messages the client keeps copies of, to apply edits, deletes and reactions to (`message_changed`). Default 5000; 0: none. */
  readonly messageCacheSize?: number;
  /**
   * The local search index of decrypted (end-to-end encrypted) messages: `store` (default) keeps it in the store
   * when the store can (`saveLocalIndex`; FileStore: a file beside it), `memory` for this run only, `off`: none.
   */
  readonly localSearch?: 'store' | 'memory' | 'off';
}

/** A user to act on: a username, a user id, or the protocol's `{username}` / `{user_id}`. */
export type UserRef = string | number | UserRefJson;

export type HistoryAnchor = { before: number } | { after: number } | { around: number } | 'latest';

export interface HistoryPage {
  readonly thread_id: number;
  readonly messages: readonly ClientMessage[];
  readonly has_more_before: boolean;
  readonly has_more_after: boolean;
}
