import type {
  ContactsReplyFrame,
  MemberJson,
  MessageJson,
  MessagesFrame,
  PresenceJson,
  ReadStateFrame,
  ReceiptEvent,
  ThreadJson,
  TypingEvent,
  UserJson,
  UserRefJson,
  WelcomeFrame,
} from '../protocol/frames.js';
import { type BackoffOptions, DEFAULT_BACKOFF, reconnectDelay } from './backoff.js';
import { Connection, type ConnectionEnd, type ReplyOf, type ServerEvent } from './connection.js';
import { Emitter } from './emitter.js';
import { ClientError } from './errors.js';
import { AccountApi, type LoginResult, type Platform } from './http.js';
import { Outbox, type SentMessage, type StatusChange } from './outbox.js';
import { Receiver } from './receiver.js';
import { type RequestJson, isIdempotent } from './requests.js';
import { type WebSocketConstructor, socketFactory, webSocketUrl } from './socket.js';
import { type ClientStore, MemoryStore, type OutboxEntry, type StoreIdentity } from './store.js';
import { ThreadList } from './thread-list.js';

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
  /** Every message of every thread, once each, in seq order per thread: live, from the inbox, from sync and gap fills. */
  message: MessageJson;
  /** One of the app's own sends moved: pending → sent → delivered → read, or failed. */
  status: StatusChange;
  receipt: ReceiptEvent;
  /** Someone is typing (never this device itself). Show it for a few seconds. */
  typing: TypingEvent;
  presence: PresenceJson;
  thread: ThreadChange;
  /** The server's data was replaced (restored backup): drop cached messages, they may be reused. */
  reset: { readonly reason: 'epoch' | 'account' };
  /** A problem the client worked around (a failed ack, a store write); nothing to do but log it. */
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
  readonly reconnect?: Partial<BackoffOptions>;
  /** How long a request may wait for its reply (and for a connection), ms. Default 15 000. */
  readonly requestTimeoutMs?: number;
  /** How long the connection may stay silent after a ping before it is taken for dead, ms. Default 10 000. */
  readonly heartbeatReplyTimeoutMs?: number;
  /** On a device that starts afresh, how many of each thread's newest unread messages to deliver. Default 200. */
  readonly catchUpLimit?: number;
  /** Sends in flight at once. Default 32. */
  readonly maxInFlight?: number;
}

/** A user to act on: a username, a user id, or the protocol's `{username}` / `{user_id}`. */
export type UserRef = string | number | UserRefJson;

export type HistoryAnchor = { before: number } | { after: number } | { around: number } | 'latest';

export interface HistoryPage {
  readonly thread_id: number;
  readonly messages: readonly MessageJson[];
  readonly has_more_before: boolean;
  readonly has_more_after: boolean;
}

/**
 * A chatd client for one device: keeps a connection up, delivers every message
 * to the app once and in order, and sends the app's messages until the server
 * has them (docs/client.md).
 */
export class ChatClient extends Emitter<ClientEvents> {
  readonly api: AccountApi;
  private readonly store: ClientStore;
  private readonly openSocket;
  private readonly backoff: BackoffOptions;
  private readonly requestTimeoutMs: number;
  private readonly heartbeatReplyTimeoutMs: number;
  private readonly receiver: Receiver;
  private readonly outbox: Outbox;
  private readonly threadList = new ThreadList();
  private current: StateChange = { state: 'stopped', reason: undefined, error: undefined, retry_in_ms: undefined, pending: 0 };
  private connection: Connection | undefined;
  private ready: Connection | undefined;
  private identity: StoreIdentity | undefined;
  private welcomeFrame: WelcomeFrame | undefined;
  private closing = false;
  private started: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** The last connection that got all the way online. */
  private caughtUpOn: Connection | undefined;

  constructor(private readonly options: ChatClientOptions) {
    super();
    const WebSocketClass = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WebSocketClass) throw new Error('no WebSocket class: pass the `WebSocket` option (in Node, import from chatd/client, which uses the ws package)');
    this.openSocket = socketFactory(WebSocketClass);
    this.api = new AccountApi(options.server, options.token);
    this.store = options.store ?? new MemoryStore();
    this.backoff = { ...DEFAULT_BACKOFF, ...options.reconnect };
    this.requestTimeoutMs = options.requestTimeoutMs ?? 15_000;
    this.heartbeatReplyTimeoutMs = options.heartbeatReplyTimeoutMs ?? 10_000;
    const reportError = (error: unknown): void => this.emit('error', error instanceof Error ? error : new Error(String(error)));
    this.receiver = new Receiver({
      deliver: (message) => this.delivered(message),
      discovered: (threadId) => void this.refreshThread(threadId, 'new'),
      saveCursor: (threadId, seq) => void this.store.setCursor(threadId, seq).catch(reportError),
      catchUpLimit: options.catchUpLimit ?? 200,
      reportError,
    });
    this.outbox = new Outbox({
      store: this.store,
      statusChanged: (change) => {
        this.emit('status', change);
        // The outbox grew or shrank: `state` carries the pending count.
        this.setState(this.current.state, this.current);
      },
      maxInFlight: options.maxInFlight ?? 32,
      reportError,
    });
  }

  /** Logs in over HTTP as a new device and returns a client for it (not started) with the login result. */
  static async login(
    options: Omit<ChatClientOptions, 'token'> & { username: string; password: string; deviceName: string; platform?: Platform },
  ): Promise<{ client: ChatClient; login: LoginResult }> {
    const login = await new AccountApi(options.server).login({
      username: options.username, password: options.password, device_name: options.deviceName, platform: options.platform ?? 'other',
    });
    return { client: new this({ ...options, token: login.token }), login };
  }

  get state(): ConnectionState {
    return this.current.state;
  }

  /** The logged-in user, once connected. */
  get user(): UserJson | undefined {
    return this.welcomeFrame?.user;
  }

  get deviceId(): number | undefined {
    return this.welcomeFrame?.device_id;
  }

  get limits(): WelcomeFrame['limits'] | undefined {
    return this.welcomeFrame?.limits;
  }

  /** Loads the store and starts connecting (and reconnecting until `close`). Resolves once the store is loaded. */
  start(): Promise<void> {
    if (this.closing) return Promise.reject(new ClientError('closed', 'a closed client does not start again: make a new one (with the same store)', false));
    this.started ??= (async () => {
      const stored = await this.store.load();
      this.identity = stored.identity;
      // Cursors count only with the identity they were made under; the identity is written last, after a whole catch-up.
      if (stored.identity) this.receiver.load(stored.cursors);
      else if (stored.cursors.size > 0) await this.store.reset();
      this.outbox.load(stored.outbox);
      void this.run();
    })();
    return this.started;
  }

  /** Resolves when the client is caught up and live; rejects if it stops first. */
  async whenOnline(): Promise<void> {
    if (this.current.state === 'online') return;
    if (this.closing || (this.current.state === 'stopped' && this.started)) {
      throw this.current.error ?? new ClientError('closed', `the client stopped (${this.current.reason ?? 'closed'})`, false);
    }
    const change = await this.once('state', (next) => next.state === 'online' || next.state === 'stopped');
    if (change.state === 'stopped') throw change.error ?? new ClientError('closed', `the client stopped (${change.reason ?? 'closed'})`, false);
  }

  /** Stops: closes the connection, stops reconnecting; resolves once the store is written. Unsent messages stay in it for the next start. */
  async close(): Promise<void> {
    this.closing = true;
    this.wake?.();
    this.connection?.close();
    this.outbox.abandon(new ClientError('closed', 'the client was closed before the server acked this message; it stays in the store', false));
    this.setState('stopped', { reason: 'closed_by_client' });
    await this.store.flush();
  }

  // ---- messages ----

  /**
   * Sends a message: stored in the outbox first, then sent, and sent again after
   * every reconnect until the server acks it. Resolves with the ack. `body` is
   * any JSON but null; text messages use `{ text }`.
   */
  async send(threadId: number, body: unknown, options: { kind?: 'text' | 'e2e'; clientMsgId?: string } = {}): Promise<SentMessage> {
    if (!this.started || this.closing || this.current.state === 'stopped') {
      throw new ClientError('closed', this.started ? 'the client has stopped' : 'call start() before send(): the store must be loaded first', false);
    }
    await this.started;
    if (body === null || body === undefined) throw new ClientError('invalid_field', 'body must be a JSON value other than null', false);
    let json: string;
    try {
      json = JSON.stringify(body);
    } catch (error) {
      throw new ClientError('invalid_field', `body cannot be sent as JSON: ${(error as Error).message}`, false);
    }
    const limit = this.limits?.max_body_bytes;
    const size = new TextEncoder().encode(json).length;
    if (limit !== undefined && size > limit) throw new ClientError('payload_too_large', `the body is ${size} bytes; the server takes at most ${limit}`, false);
    const entry: OutboxEntry = {
      client_msg_id: options.clientMsgId ?? randomUuid(),
      thread_id: threadId,
      kind: options.kind ?? 'text',
      body,
      created_at: Date.now(),
    };
    return this.outbox.add(entry);
  }

  /** Messages not yet acked by the server, oldest first. A message joins once it is stored, just before `send` sends it. */
  pending(): readonly OutboxEntry[] {
    return this.outbox.pending();
  }

  /** A page of a thread's messages (docs/protocol.md, `history`). Does not go through the `message` event. */
  async history(threadId: number, anchor: HistoryAnchor = 'latest', limit?: number): Promise<HistoryPage> {
    const reply = await this.call({ type: 'history', thread_id: threadId, ...(anchor === 'latest' ? {} : anchor), ...(limit ? { limit } : {}) });
    return page(reply);
  }

  /** The page around one message. */
  async jump(messageId: number, limit?: number): Promise<HistoryPage> {
    return page(await this.call({ type: 'jump', message_id: messageId, ...(limit ? { limit } : {}) }));
  }

  /** Marks the thread read up to `seq` (default: its last message). */
  async markRead(threadId: number, seq?: number): Promise<ReadStateFrame> {
    const upTo = seq ?? this.threadList.get(threadId)?.last_seq ?? this.receiver.cursors().get(threadId) ?? 0;
    const reply = await this.call({ type: 'read', thread_id: threadId, seq: upTo });
    const moved = this.threadList.readMoved(threadId, reply.read_seq, reply.unread);
    if (moved) this.emit('thread', { thread: moved.thread, reason: 'read' });
    return reply;
  }

  /** Tells the thread's members that the user is typing. Repeat every few seconds while they type. */
  async typing(threadId: number): Promise<void> {
    await this.call({ type: 'typing', thread_id: threadId });
  }

  // ---- threads ----

  /** The thread list from the server (also refreshes `threadList()`). */
  async threads(): Promise<{ threads: ThreadJson[]; total_unread: number }> {
    const reply = await this.call({ type: 'threads' });
    this.threadList.replaceAll(reply.threads);
    return { threads: [...reply.threads], total_unread: reply.total_unread };
  }

  /** The threads as the client knows them now, most recent activity first; current once `online`. */
  cachedThreads(): ThreadJson[] {
    return this.threadList.all();
  }

  /** Unread messages of one thread, or of all (muted and former threads included), as the client knows them. */
  unread(threadId?: number): number {
    return threadId === undefined ? this.threadList.totalUnread() : (this.threadList.get(threadId)?.unread ?? 0);
  }

  thread(threadId: number): Promise<{ thread: ThreadJson; members: MemberJson[] }> {
    return this.threadCall({ type: 'thread_get', thread_id: threadId });
  }

  /** The direct thread with `user`, created on first use. */
  async openDirect(user: UserRef): Promise<ThreadJson> {
    return (await this.threadCall({ type: 'direct_open', ...userRef(user) })).thread;
  }

  async createGroup(title: string, members: readonly UserRef[]): Promise<ThreadJson> {
    return (await this.threadCall({ type: 'group_create', title, members: members.map(memberRef) })).thread;
  }

  addMembers(threadId: number, members: readonly UserRef[]): Promise<{ thread: ThreadJson; members: MemberJson[] }> {
    return this.threadCall({ type: 'group_add', thread_id: threadId, members: members.map(memberRef) });
  }

  async removeMember(threadId: number, user: UserRef): Promise<void> {
    await this.call({ type: 'group_remove', thread_id: threadId, ...userRef(user) });
  }

  async leaveGroup(threadId: number): Promise<void> {
    await this.call({ type: 'group_leave', thread_id: threadId });
  }

  renameGroup(threadId: number, title: string): Promise<{ thread: ThreadJson; members: MemberJson[] }> {
    return this.threadCall({ type: 'group_rename', thread_id: threadId, title });
  }

  setRole(threadId: number, user: UserRef, role: 'owner' | 'admin' | 'member'): Promise<{ thread: ThreadJson; members: MemberJson[] }> {
    return this.threadCall({ type: 'group_role', thread_id: threadId, role, ...userRef(user) });
  }

  /** Mutes or labels the thread for this user; `label: null` clears the label. */
  updateThread(threadId: number, settings: { muted?: boolean; label?: string | null }): Promise<{ thread: ThreadJson; members: MemberJson[] }> {
    return this.threadCall({ type: 'thread_settings', thread_id: threadId, ...settings });
  }

  // ---- people ----

  async presence(userIds: readonly number[]): Promise<PresenceJson[]> {
    return [...(await this.call({ type: 'presence', user_ids: userIds })).users];
  }

  async contacts(): Promise<ContactsReplyFrame['contacts']> {
    return (await this.call({ type: 'contacts' })).contacts;
  }

  async addContact(user: UserRef): Promise<void> {
    await this.call({ type: 'contact_add', ...userRef(user) });
  }

  async removeContact(userId: number): Promise<void> {
    await this.call({ type: 'contact_remove', user_id: userId });
  }

  // ---- the connection ----

  private async run(): Promise<void> {
    for (let attempt = 0; !this.closing; ) {
      this.setState('connecting', {});
      const { end, caughtUp } = await this.connectOnce();
      if (this.closing) return;
      // Only a connection that got all the way online resets the backoff: one that fails in its catch-up every time must not spin.
      if (caughtUp) attempt = 0;
      if (!end.reconnect) {
        this.outbox.abandon(end.error ?? new ClientError('closed', `the server ended the session (${end.reason}); the message stays in the store`, false));
        this.setState('stopped', { reason: end.reason, error: end.error });
        return;
      }
      const delay = reconnectDelay(attempt++, this.backoff);
      this.setState('offline', { reason: end.reason, error: end.error, retry_in_ms: delay });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /** One connection, from opening to its end. */
  private connectOnce(): Promise<{ end: ConnectionEnd; caughtUp: boolean }> {
    return new Promise((resolve) => {
      let connection: Connection;
      try {
        connection = this.newConnection(resolve);
      } catch (error) {
        // The WebSocket constructor refused the URL (a bad scheme; wss required on an https page): retrying cannot help.
        const refusal = new ClientError('network', `cannot open a WebSocket to ${this.options.server}: ${(error as Error).message}`, false);
        resolve({ end: { code: 0, reason: 'cannot_connect', reconnect: false, error: refusal }, caughtUp: false });
        return;
      }
      this.connection = connection;
      connection
        .open((welcome) => this.welcomed(connection, welcome))
        .catch(() => {
          // The connection's end (already reported or on its way) says why.
        });
    });
  }

  private newConnection(resolve: (result: { end: ConnectionEnd; caughtUp: boolean }) => void): Connection {
    const connection: Connection = new Connection({
      url: webSocketUrl(this.options.server),
      token: this.options.token,
      openSocket: this.openSocket,
      requestTimeoutMs: this.requestTimeoutMs,
      heartbeatReplyTimeoutMs: this.heartbeatReplyTimeoutMs,
      onEvent: (event) => this.receive(connection, event),
      onEnd: (end) => {
        if (this.connection === connection) {
          this.connection = undefined;
          this.ready = undefined;
          this.receiver.detach();
          this.outbox.detach();
        }
        resolve({ end, caughtUp: this.caughtUpOn === connection });
      },
    });
    return connection;
  }

  /** Runs in the turn `welcome` arrives: the receiver must be ready for the inbox frames right behind it. */
  private welcomed(connection: Connection, welcome: WelcomeFrame): void {
    this.welcomeFrame = welcome;
    const known = this.identity;
    if (known && (known.epoch !== welcome.epoch || known.user_id !== welcome.user.id || known.device_id !== welcome.device_id)) {
      // The data behind our cursors is gone (restored backup) or they are another account's: start afresh.
      this.identity = undefined;
      this.receiver.reset();
      // Store writes apply in call order: the cursors the catch-up saves land after this reset.
      this.store.reset().catch((error: unknown) => this.emit('error', error instanceof Error ? error : new Error(String(error))));
      const sameDevice = known.user_id === welcome.user.id && known.device_id === welcome.device_id;
      // Another account's (or device's) unsent messages must not go out under this one: they fail instead.
      if (!sameDevice) this.outbox.discard(new ClientError('forbidden', 'this message was queued by another account or device of this store; it was not sent', false));
      this.emit('reset', { reason: sameDevice ? 'epoch' : 'account' });
    }
    this.receiver.attach(connection, this.identity === undefined);
    this.outbox.attach(connection);
    this.ready = connection;
    this.setState('syncing', {});
  }

  private receive(connection: Connection, event: ServerEvent): void {
    if (connection !== this.connection) return;
    switch (event.type) {
      case 'message':
        this.receiver.offer(event.message);
        return;
      case 'inbox_done':
        void this.catchUp(connection);
        return;
      case 'receipt':
        this.receipt(event);
        return;
      case 'typing':
        if (event.device_id !== this.deviceId) this.emit('typing', event);
        return;
      case 'presence_update': {
        const { type: _type, ...presence } = event;
        this.emit('presence', presence);
        return;
      }
    }
  }

  private async catchUp(connection: Connection): Promise<void> {
    try {
      const { threads } = await connection.request({ type: 'threads' });
      if (connection !== this.connection) return;
      this.threadList.replaceAll(threads);
      await this.receiver.catchUp(connection, threads);
      if (connection !== this.connection || !this.welcomeFrame) return;
      const identity = { epoch: this.welcomeFrame.epoch, user_id: this.welcomeFrame.user.id, device_id: this.welcomeFrame.device_id };
      if (!this.identity) await this.store.setIdentity(identity);
      this.identity = identity;
      if (connection !== this.connection) return;
      this.caughtUpOn = connection;
      this.setState('online', {});
    } catch (error) {
      // Without a catch-up the order promise cannot be kept: start over on a new connection.
      if (connection !== this.connection) return;
      this.emit('error', error instanceof Error ? error : new Error(String(error)));
      connection.abandon('no_reply');
    }
  }

  private delivered(message: MessageJson): void {
    const ownUserId = this.welcomeFrame?.user.id ?? 0;
    const thread = this.threadList.messageArrived(message, ownUserId);
    this.emit('message', message);
    if (thread) this.emit('thread', { thread, reason: 'message' });
    if (message.kind === 'system') void this.refreshThread(message.thread_id, 'changed');
  }

  private receipt(receipt: ReceiptEvent): void {
    const ownUserId = this.welcomeFrame?.user.id ?? 0;
    this.outbox.receipt(receipt, ownUserId);
    this.emit('receipt', receipt);
    if (receipt.user_id !== ownUserId || receipt.kind !== 'read') return;
    // Another device of ours (or this one) read: the unread count follows.
    const moved = this.threadList.readMoved(receipt.thread_id, receipt.seq);
    if (!moved) return;
    if (moved.exact) this.emit('thread', { thread: moved.thread, reason: 'read' });
    else void this.refreshThread(receipt.thread_id, 'read');
  }

  private async refreshThread(threadId: number, reason: ThreadChange['reason']): Promise<void> {
    try {
      const { thread } = await this.call({ type: 'thread_get', thread_id: threadId });
      this.threadList.put(thread);
      this.emit('thread', { thread, reason });
    } catch (error) {
      if (this.closing) return; // Cut short by close(): nothing went wrong.
      this.emit('error', error instanceof Error ? error : new Error(String(error)));
    }
  }

  private async threadCall(request: RequestJson & { type: 'thread_get' | 'direct_open' | 'group_create' | 'group_add' | 'group_rename' | 'group_role' | 'thread_settings' }): Promise<{ thread: ThreadJson; members: MemberJson[] }> {
    const reply = await this.call(request);
    const known = this.threadList.get(reply.thread.id) !== undefined;
    this.threadList.put(reply.thread);
    this.emit('thread', { thread: reply.thread, reason: known ? 'changed' : 'new' });
    return { thread: reply.thread, members: [...reply.members] };
  }

  /**
   * Sends a request once a connection is ready (waiting up to the request
   * timeout for one). Idempotent requests are repeated on the next connection
   * when the one they went out on ends; others fail with `disconnected`.
   */
  private async call<R extends RequestJson>(request: R): Promise<ReplyOf[R['type']]> {
    const deadline = Date.now() + this.requestTimeoutMs;
    for (;;) {
      const connection = await this.readyConnection(deadline);
      try {
        return await connection.request(request);
      } catch (error) {
        if (!(error instanceof ClientError) || error.code !== 'disconnected' || !isIdempotent(request.type) || Date.now() >= deadline) throw error;
      }
    }
  }

  private async readyConnection(deadline: number): Promise<Connection> {
    while (!this.ready) {
      if (this.closing || this.current.state === 'stopped') throw new ClientError('closed', 'the client is not running', false);
      const wait = deadline - Date.now();
      if (wait <= 0) throw new ClientError('disconnected', 'not connected to the server', true);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, wait);
        const off = this.on('state', done);
        function done(): void {
          clearTimeout(timer);
          off();
          resolve();
        }
      });
    }
    return this.ready;
  }

  private setState(state: ConnectionState, change: Partial<Omit<StateChange, 'state' | 'pending'>>): void {
    const next: StateChange = {
      state,
      reason: change.reason,
      error: change.error,
      retry_in_ms: change.retry_in_ms,
      pending: this.outbox.pending().length,
    };
    const same = next.state === this.current.state && next.pending === this.current.pending && next.reason === this.current.reason;
    this.current = next;
    if (!same) this.emit('state', next);
  }
}

/** A version-4 UUID. `crypto.randomUUID` exists only in secure contexts (not on a plain-http page); `getRandomValues` everywhere. */
function randomUuid(): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = ((bytes[6] as number) & 0x0f) | 0x40;
  bytes[8] = ((bytes[8] as number) & 0x3f) | 0x80;
  const hex = [...bytes].map((byte) => byte.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function userRef(user: UserRef): UserRefJson {
  if (typeof user === 'string') return { username: user };
  if (typeof user === 'number') return { user_id: user };
  return user;
}

function memberRef(user: UserRef): number | string {
  if (typeof user === 'string' || typeof user === 'number') return user;
  return 'user_id' in user ? user.user_id : user.username;
}

function page(reply: MessagesFrame): HistoryPage {
  return { thread_id: reply.thread_id, messages: reply.messages, has_more_before: reply.has_more_before, has_more_after: reply.has_more_after };
}
