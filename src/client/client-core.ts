import type { HiddenJson, MemberJson, MessageJson, ReceiptEvent, ThreadJson, UserJson, WelcomeFrame } from '../protocol/frames.js';
import { Attachments } from './attachments.js';
import { type BackoffOptions, DEFAULT_BACKOFF, reconnectDelay } from './backoff.js';
import { Connection, type ConnectionEnd, type ReplyOf, type ServerEvent } from './connection.js';
import { E2eSession } from './e2e.js';
import { editedBy, openEdit, openEditNow } from './e2e-edits.js';
import type { ClientMessage } from './e2e-types.js';
import { Emitter } from './emitter.js';
import { ClientError } from './errors.js';
import { HistoryShare } from './history-share.js';
import { isChange } from './message-changes.js';
import { MessageState } from './message-state.js';
import { AccountApi } from './http.js';
import { OrderedDelivery } from './ordered-delivery.js';
import { Outbox } from './outbox.js';
import { Receiver } from './receiver.js';
import { type RequestJson, isIdempotent } from './requests.js';
import { type SocketFactory, type WebSocketConstructor, socketFactory } from './socket.js';
import { StreamSocket } from './stream-socket.js';
import { DEFAULT_TRANSPORTS, type TransportKind, platformClock } from './transport-policy.js';
import { TransportSwitch } from './transport-switch.js';
import { type ClientStore, MemoryStore, type StoreIdentity } from './store.js';
import { portableSha256 } from './sha256.js';
import { ThreadList } from './thread-list.js';
import type { ChatClientOptions, ClientEvents, ConnectionState, StateChange, ThreadChange } from './types.js';

/**
 * The life of a ChatClient: connect, catch up, stay connected, reconnect; the
 * receiving and sending halves wired to each connection in turn. ChatClient
 * (client.ts) adds the calls an app makes.
 */
export abstract class ClientCore extends Emitter<ClientEvents> {
  readonly api: AccountApi;
  /** Uploads, downloads and links (HTTP, beside the connection). */
  protected readonly attachments: Attachments;
  protected readonly store: ClientStore;
  /** Makes each connection on the transport the policy picks; tries the WebSocket again in the background while on a fallback. */
  private readonly transports: TransportSwitch;
  /** Ends the connect loop's wait for the current connection. */
  private endAttempt: ((result: { end: ConnectionEnd; caughtUp: boolean }) => void) | undefined;
  private readonly backoff: BackoffOptions;
  private readonly requestTimeoutMs: number;
  protected readonly receiver: Receiver;
  protected readonly outbox: Outbox;
  protected readonly threadList = new ThreadList();
  /** With `encryption` on only. */
  protected readonly e2e: E2eSession | undefined;
  /** `shareHistory` and the `history` device messages (with `encryption` on only). */
  protected readonly historyShare: HistoryShare | undefined;
  private readonly delivery: OrderedDelivery;
  /** Copies of handed-out messages (changes apply to them), the local search index, hidden messages. */
  protected readonly messages: MessageState;
  protected current: StateChange = { state: 'stopped', reason: undefined, error: undefined, retry_in_ms: undefined, pending: 0 };
  private connection: Connection | undefined;
  private ready: Connection | undefined;
  private identity: StoreIdentity | undefined;
  private welcomeFrame: WelcomeFrame | undefined;
  protected closing = false;
  protected started: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** The last connection that got all the way online. */
  private caughtUpOn: Connection | undefined;
  /** The connection whose catch-up has started (it runs once per connection). */
  private catchingUp: Connection | undefined;
  /** A connection dropped to have a held-back message delivered again: it does not count as a good one for the backoff. */
  private droppedToRedeliver: Connection | undefined;
  /** With encryption: settles once this connection's keys are published and the directory loaded (never rejects). */
  private e2eSettled: Promise<void> | undefined;
  /** The connect loop has begun (the store is loaded): from then on `stopped` is final. */
  protected running = false;

  constructor(private readonly options: ChatClientOptions) {
    super();
    const transports = options.transports ?? DEFAULT_TRANSPORTS;
    const WebSocketClass = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WebSocketClass && transports.includes('websocket')) {
      throw new Error('no WebSocket class: pass the `WebSocket` option (in Node, import from chatd/client, which uses the ws package)');
    }
    const openWebSocket: SocketFactory | undefined = WebSocketClass ? socketFactory(WebSocketClass) : undefined;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 15_000;
    this.transports = new TransportSwitch({
      server: options.server,
      token: options.token,
      transports,
      websocketRetryMs: options.websocketRetryMs ?? 60_000,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      requestTimeoutMs: this.requestTimeoutMs,
      heartbeatReplyTimeoutMs: options.heartbeatReplyTimeoutMs ?? 10_000,
      clock: platformClock,
      openSocket: (kind, url) => kind === 'websocket'
        ? (openWebSocket as SocketFactory)(url)
        : new StreamSocket({ server: options.server, mode: kind, ...(options.fetch ? { fetch: options.fetch } : {}) }),
      ready: () => this.ready,
      onEvent: (connection, event) => this.receive(connection, event),
      onEnd: (connection, end) => this.connectionEnded(connection, end),
      takeOver: (connection, welcome) => this.takeOver(connection, welcome),
      transportChanged: (change) => this.emit('transport', change),
    });
    this.api = new AccountApi(options.server, options.token);
    this.attachments = new Attachments(options.server, options.token, options.sha256 ?? portableSha256);
    this.store = options.store ?? new MemoryStore();
    this.backoff = { ...DEFAULT_BACKOFF, ...options.reconnect };
    const reportError = (error: unknown): void => this.reportError(error);
    this.receiver = new Receiver({
      deliver: (message) => this.delivery.deliver(message),
      discovered: (threadId) => void this.refreshThread(threadId, 'new'),
      saveCursor: (threadId, seq) => void this.store.setCursor(threadId, seq).catch(reportError),
      catchUpLimit: options.catchUpLimit ?? 200,
      reportError,
      heldBack: (connection) => {
        this.droppedToRedeliver = connection;
      },
    });
    const e2e = options.encryption
      ? new E2eSession({
          store: this.store,
          call: (request) => this.call(request),
          revokeDevice: (deviceId) => this.api.removeDevice(deviceId),
          events: {
            keys: (change) => this.emit('keys', change),
            identity: (change) => this.emit('identity', change),
            deviceRequest: (request) => this.emit('device_request', request),
            account: (standing) => this.emit('account', standing),
            error: reportError,
          },
          always: options.encryption === 'always',
          oldKeysTtlMs: options.oldKeysTtlMs ?? 30 * 24 * 3600 * 1000,
        })
      : undefined;
    this.e2e = e2e;
    this.historyShare = e2e
      ? HistoryShare.attachTo(e2e, (request) => this.call(request), {
          progress: (progress) => this.emit('history_progress', progress),
          received: (received) => this.emit('history', received),
          error: reportError,
        }, options)
      : undefined;
    this.messages = new MessageState({
      store: this.store, cacheSize: options.messageCacheSize ?? 5000, reportError,
      // Only decrypted messages are indexed: without encryption there is nothing to index (and minisearch is not loaded).
      localSearch: options.encryption ? (options.localSearch ?? 'store') : 'off',
    });
    this.delivery = new OrderedDelivery({
      // Without encryption an e2e message is given as it came. An e2e edit opens against the message it edits.
      openNow: (message) => {
        if (!e2e) return message;
        const edited = editedBy(message);
        return edited === undefined ? e2e.openNow(message) : openEditNow(e2e, message, this.messages.target(edited));
      },
      open: async (message) => {
        if (!e2e) return message;
        const edited = editedBy(message);
        return edited === undefined ? e2e.open(message) : openEdit(e2e, message, () => this.editTarget(edited));
      },
      emit: (message) => this.emitMessage(message),
      reportError,
    });
    this.outbox = new Outbox({
      ...(e2e
        ? {
            seal: (entry) => e2e.seal(entry),
            devicesChanged: (threadId, refusal) => e2e.refreshThread(threadId, refusal),
            mustEncrypt: (threadId) => e2e.mustEncrypt(threadId, this.threadList.get(threadId)),
          }
        : {}),
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

  /**
   * How the client reaches the server: `websocket`, or a fallback for networks
   * that break WebSockets, `stream` (an event stream down, POSTs up) or `poll`
   * (long polls down, for proxies that buffer streams). The transport of the
   * last connection that authenticated; undefined before the first. The
   * `transport` event says when it changes.
   */
  get transport(): TransportKind | undefined {
    return this.transports.transport;
  }

  /** The server's protocol version, once connected. */
  get protocol(): number | undefined {
    return this.welcomeFrame?.protocol;
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
      this.e2e?.load(stored.e2e);
      // Cursors count only with the identity they were made under; the identity is written last, after a whole catch-up.
      if (stored.identity) this.receiver.load(stored.cursors);
      else if (stored.cursors.size > 0) await this.store.reset();
      this.outbox.load(stored.outbox);
      await this.messages.load(stored.identity ? stored.hiddenCursor : undefined);
      this.running = true;
      void this.run();
    })();
    return this.started;
  }

  /** Resolves when the client is caught up and live; rejects if it stops first. */
  async whenOnline(): Promise<void> {
    if (this.current.state === 'online') return;
    const stopped = (change: StateChange): ClientError => change.error ?? new ClientError('closed', `the client stopped (${change.reason ?? 'closed'})`, false);
    if (this.closing || (this.current.state === 'stopped' && this.running)) throw stopped(this.current);
    const change = await this.once('state', (next) => next.state === 'online' || next.state === 'stopped');
    if (change.state === 'stopped') throw stopped(change);
  }

  /** A problem worked around (a failed ack, a store write): the app hears of it through `error`. */
  protected reportError(error: unknown): void {
    this.emit('error', error instanceof Error ? error : new Error(String(error)));
  }

  /** Stops: closes the connection, stops reconnecting; resolves once the store is written. Unsent messages stay in it for the next start. */
  async close(): Promise<void> {
    this.closing = true;
    this.wake?.();
    this.transports.stop();
    this.connection?.close();
    this.outbox.abandon(new ClientError('closed', 'the client was closed before the server acked this message; it stays in the store', false));
    this.setState('stopped', { reason: 'closed_by_client' });
    await this.messages.flush();
    await this.store.flush();
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
      // After 4004 the server refuses this device until its pause is over: no sooner than it said.
      const delay = Math.max(reconnectDelay(attempt++, this.backoff), end.retryAfterMs ?? 0);
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

  /** One connection, from opening to its end (or to the end of the one that took over from it: see takeOver). */
  private connectOnce(): Promise<{ end: ConnectionEnd; caughtUp: boolean }> {
    return new Promise((resolve) => {
      this.endAttempt = resolve;
      try {
        this.connection = this.transports.connect((connection, welcome) => this.welcomed(connection, welcome));
      } catch (error) {
        // The WebSocket constructor refused the URL (a bad scheme; wss required on an https page): retrying cannot help.
        const refusal = new ClientError('network', `cannot open a WebSocket to ${this.options.server}: ${(error as Error).message}`, false);
        resolve({ end: { code: 0, reason: 'cannot_connect', reconnect: false, error: refusal }, caughtUp: false });
      }
    });
  }

  private connectionEnded(connection: Connection, end: ConnectionEnd): void {
    // Taken over from by a background try (takeOver): that one carries on.
    if (this.connection !== connection) return;
    this.connection = undefined;
    this.ready = undefined;
    this.receiver.detach();
    this.outbox.detach();
    this.endAttempt?.({ end, caughtUp: this.caughtUpOn === connection && this.droppedToRedeliver !== connection });
  }

  /**
   * A background try of the WebSocket takes over from the fallback
   * (transport-switch.ts): requests go to it from now on; the outbox sends
   * again what was in flight, and as its inbox went by while the fallback was
   * still the client's (which got the same events), the catch-up starts at once.
   */
  private takeOver(connection: Connection, welcome: WelcomeFrame): void {
    this.receiver.detach();
    this.outbox.detach();
    this.connection = connection;
    this.ready = undefined;
    this.welcomed(connection, welcome);
    void this.catchUp(connection);
  }

  /** Runs in the turn `welcome` arrives: the receiver must be ready for the inbox frames right behind it. */
  private welcomed(connection: Connection, welcome: WelcomeFrame): void {
    this.welcomeFrame = welcome;
    const known = this.identity;
    if (known && (known.epoch !== welcome.epoch || known.user_id !== welcome.user.id || known.device_id !== welcome.device_id)) {
      // The data behind our cursors is gone (restored backup) or they are another account's: start afresh.
      this.identity = undefined;
      this.receiver.reset();
      this.messages.reset();
      // Store writes apply in call order: the cursors the catch-up saves land after this reset.
      this.store.reset().catch((error: unknown) => this.reportError(error));
      const sameDevice = known.user_id === welcome.user.id && known.device_id === welcome.device_id;
      // Another account's (or device's) unsent messages must not go out under this one: they fail instead.
      if (!sameDevice) this.outbox.discard(new ClientError('forbidden', 'this message was queued by another account or device of this store; it was not sent', false));
      this.emit('reset', { reason: sameDevice ? 'epoch' : 'account' });
    }
    this.delivery.resume();
    this.receiver.attach(connection, this.identity === undefined);
    if (this.e2e) {
      const history = this.historyShare;
      // Keys settled and device messages drained: a history grant cut short goes on (failures are reported by the session).
      const settled = this.e2e.connected(welcome.user.id, welcome.device_id, (request) => connection.request(request));
      // `online` waits for it: a message sent to this device then is sealed to its published keys.
      this.e2eSettled = settled.catch(() => undefined);
      void settled.then(
        () => history?.resume().catch((error: unknown) => this.reportError(error)),
        () => undefined,
      );
    }
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
      case 'hidden':
        this.hiddenArrived(event.items);
        return;
      case 'receipt':
        this.receipt(event);
        return;
      case 'typing':
        if (event.device_id !== this.deviceId) this.emit('typing', event);
        return;
      case 'keys_changed':
      case 'account_changed':
      case 'device_message':
        this.e2e?.event(event);
        return;
      case 'presence_update': {
        const { type: _type, ...presence } = event;
        this.emit('presence', presence);
        return;
      }
    }
  }

  private async catchUp(connection: Connection): Promise<void> {
    // Once per connection: after a take-over it starts at once, and a late `inbox_done` must not start it again.
    if (this.catchingUp === connection) return;
    this.catchingUp = connection;
    try {
      const { threads } = await connection.request({ type: 'threads' });
      if (connection !== this.connection) return;
      this.threadList.replaceAll(threads);
      for (const thread of threads) this.e2e?.threadSeen(thread);
      await this.receiver.catchUp(connection, threads);
      if (connection !== this.connection || !this.welcomeFrame) return;
      await this.catchUpHidden(connection);
      if (connection !== this.connection || !this.welcomeFrame) return;
      const identity = { epoch: this.welcomeFrame.epoch, user_id: this.welcomeFrame.user.id, device_id: this.welcomeFrame.device_id };
      if (!this.identity) await this.store.setIdentity(identity);
      this.identity = identity;
      if (connection !== this.connection) return;
      // With encryption, online also means this device's keys are published and its standing known (failures were reported).
      await this.e2eSettled;
      if (connection !== this.connection) return;
      this.caughtUpOn = connection;
      this.setState('online', {});
    } catch (error) {
      // Without a catch-up the order promise cannot be kept: start over on a new connection.
      if (connection !== this.connection) return;
      this.reportError(error);
      connection.abandon('no_reply');
    }
  }

  private emitMessage(message: ClientMessage): void {
    const ownUserId = this.welcomeFrame?.user.id ?? 0;
    if (isChange(message)) {
      // Never a `message` and never unread: applied to the target, told as `message_changed`.
      const updated = this.messages.changed(message);
      const thread = this.threadList.changeArrived(message, ownUserId, updated);
      const { change } = message;
      this.emit('message_changed', { threadId: message.thread_id, messageId: change.message_id, change, ...(updated ? { message: updated } : {}), by: message });
      if (thread) this.emit('thread', { thread, reason: 'message' });
      return;
    }
    this.messages.seen(message);
    const thread = this.threadList.messageArrived(message, ownUserId);
    this.emit('message', message);
    if (thread) this.emit('thread', { thread, reason: 'message' });
    if (message.kind === 'system') void this.refreshThread(message.thread_id, 'changed');
  }

  /** Whether `connection` is still the client's current one (a reply to an older one is dropped). */
  protected isCurrent(connection: Connection): boolean {
    return connection === this.connection;
  }

  /** Messages deleted for this user (the `hidden` event, or the list after connecting): client-messages.ts. */
  protected abstract hiddenArrived(items: ReadonlyArray<Pick<HiddenJson, 'thread_id' | 'message_id'> & { id?: number }>): void;
  /** After the catch-up: the messages hidden for this user while this device was away. */
  protected abstract catchUpHidden(connection: Connection): Promise<void>;
  /** The message an e2e edit changes (its client_msg_id and author). */
  protected abstract editTarget(messageId: number): Promise<Pick<MessageJson, 'client_msg_id' | 'sender_id'> | undefined>;

  /**
   * A receipt (protocol 4: one about a message of this user's, or this user's own read cursor; protocol 3 servers
   * also sent other members' receipts about others' messages, which nothing here needs): the outbox follows its
   * messages' ticks, this user's own `read` moves the unread count.
   */
  private receipt(receipt: ReceiptEvent): void {
    const ownUserId = this.welcomeFrame?.user.id ?? 0;
    this.outbox.receipt(receipt, ownUserId);
    this.emit('receipt', receipt);
    if (receipt.user_id !== ownUserId || receipt.kind !== 'read') return;
    // This device's own markRead reply got there first (protocol 4 publishes receipts at the end of the server's
    // turn, after the reply): the count is the reply's, exact; asking thread_get again would add nothing.
    if (receipt.seq <= (this.threadList.get(receipt.thread_id)?.read_seq ?? -1)) return;
    // Another device of ours (or this one) read: the unread count follows.
    const moved = this.threadList.readMoved(receipt.thread_id, receipt.seq);
    if (!moved) return;
    if (moved.exact) this.emit('thread', { thread: moved.thread, reason: 'read' });
    else void this.refreshThread(receipt.thread_id, 'read');
  }

  protected async refreshThread(threadId: number, reason: ThreadChange['reason']): Promise<void> {
    try {
      const { thread } = await this.call({ type: 'thread_get', thread_id: threadId });
      this.threadList.put(thread);
      this.e2e?.threadSeen(thread);
      this.emit('thread', { thread, reason });
    } catch (error) {
      if (this.closing) return; // Cut short by close(): nothing went wrong.
      this.reportError(error);
    }
  }

  protected async threadCall(
    request: RequestJson & { type: 'thread_get' | 'direct_open' | 'group_create' | 'group_add' | 'group_rename' | 'group_role' | 'thread_settings' | 'require_e2e' },
  ): Promise<{ thread: ThreadJson; members: MemberJson[] }> {
    const reply = await this.call(request);
    const known = this.threadList.get(reply.thread.id) !== undefined;
    this.threadList.put(reply.thread);
    this.e2e?.threadSeen(reply.thread);
    this.emit('thread', { thread: reply.thread, reason: known ? 'changed' : 'new' });
    return { thread: reply.thread, members: [...reply.members] };
  }

  /**
   * Sends a request once a connection is ready (waiting up to the request
   * timeout for one). Idempotent requests are repeated on the next connection
   * when the one they went out on ends; others fail with `disconnected`.
   * `sinceProtocol`: the protocol version that brought the request; a
   * connection to an older server refuses it here, before sending, with the
   * `unknown_type` that server would answer (not retryable).
   */
  protected async call<R extends RequestJson>(request: R, sinceProtocol = 0): Promise<ReplyOf[R['type']]> {
    const deadline = Date.now() + this.requestTimeoutMs;
    for (;;) {
      const connection = await this.readyConnection(deadline);
      const protocol = connection.welcome?.protocol ?? 0;
      if (protocol < sinceProtocol) {
        throw new ClientError('unknown_type', `the server speaks protocol ${protocol}; ${request.type} needs protocol ${sinceProtocol} or later`, false);
      }
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
