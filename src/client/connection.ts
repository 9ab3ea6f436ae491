import { CloseCodes, type CloseReason } from '../errors.js';
import type {
  AccountChangedEvent,
  AckFrame,
  ContactsReplyFrame,
  DeliveredReplyFrame,
  DeviceMessageEvent,
  DeviceMessagesReplyFrame,
  ErrorFrame,
  HiddenEvent,
  HiddenReplyFrame,
  InboxDoneEvent,
  KeysChangedEvent,
  KeysReplyFrame,
  MessageEvent,
  MessagesFrame,
  OkFrame,
  PongFrame,
  PresenceEvent,
  PresenceReplyFrame,
  ReadStateFrame,
  ReceiptEvent,
  ReceiptsReplyFrame,
  SearchResultsFrame,
  SyncReplyFrame,
  ThreadReplyFrame,
  ThreadsReplyFrame,
  TypingEvent,
  UsersReplyFrame,
  WelcomeFrame,
} from '../protocol/frames.js';
import { ClientError, isFrameRateRefusal } from './errors.js';
import { Pacer, type QueuePlace } from './pacer.js';
import type { RequestJson, RequestType } from './requests.js';
import type { SocketFactory, SocketLike } from './socket.js';

/** The reply frame each request gets (or an `error`). */
export interface ReplyOf {
  ping: PongFrame;
  send: AckFrame;
  delivered: DeliveredReplyFrame;
  read: ReadStateFrame;
  receipts: ReceiptsReplyFrame;
  history: MessagesFrame;
  jump: MessagesFrame;
  sync: SyncReplyFrame;
  threads: ThreadsReplyFrame;
  thread_get: ThreadReplyFrame;
  direct_open: ThreadReplyFrame;
  group_create: ThreadReplyFrame;
  group_add: ThreadReplyFrame;
  group_remove: OkFrame;
  group_leave: OkFrame;
  group_rename: ThreadReplyFrame;
  group_role: ThreadReplyFrame;
  thread_settings: ThreadReplyFrame;
  typing: OkFrame;
  presence: PresenceReplyFrame;
  contacts: ContactsReplyFrame;
  contact_add: OkFrame;
  contact_remove: OkFrame;
  push_register: OkFrame;
  push_unregister: OkFrame;
  keys_publish: OkFrame;
  keys_get: KeysReplyFrame;
  require_e2e: ThreadReplyFrame;
  account_publish: OkFrame;
  device_approve: OkFrame;
  device_send: OkFrame;
  device_messages: DeviceMessagesReplyFrame;
  device_messages_ack: OkFrame;
  edit: AckFrame;
  /** `ok`: deleted for me, or already deleted. */
  delete: AckFrame | OkFrame;
  /** `ok`: the reaction was already so (nothing stored). */
  react: AckFrame | OkFrame;
  hidden: HiddenReplyFrame;
  search: SearchResultsFrame;
  users_search: UsersReplyFrame;
}

/** The reply types each request may get (one, or a list where the server answers either). */
const REPLY_TYPE: { readonly [K in RequestType]: ReplyOf[K]['type'] | ReadonlyArray<ReplyOf[K]['type']> } = {
  ping: 'pong', send: 'ack', delivered: 'delivered', read: 'read_state', receipts: 'receipts', history: 'messages', jump: 'messages',
  sync: 'sync', threads: 'threads', thread_get: 'thread', direct_open: 'thread', group_create: 'thread',
  group_add: 'thread', group_remove: 'ok', group_leave: 'ok', group_rename: 'thread', group_role: 'thread',
  thread_settings: 'thread', typing: 'ok', presence: 'presence', contacts: 'contacts', contact_add: 'ok', contact_remove: 'ok', push_register: 'ok', push_unregister: 'ok',
  keys_publish: 'ok', keys_get: 'keys', require_e2e: 'thread',
  account_publish: 'ok', device_approve: 'ok', device_send: 'ok', device_messages: 'device_messages', device_messages_ack: 'ok',
  edit: 'ack', delete: ['ack', 'ok'], react: ['ack', 'ok'], hidden: 'hidden', search: 'search_results', users_search: 'users',
};

/** A request path that resolves with the request's reply (a connection's, or the client's that waits for one). */
export type Call = <R extends RequestJson>(request: R) => Promise<ReplyOf[R['type']]>;

export type ServerEvent =
  | MessageEvent | InboxDoneEvent | ReceiptEvent | TypingEvent | PresenceEvent
  | KeysChangedEvent | AccountChangedEvent | DeviceMessageEvent | HiddenEvent;

/** Why a connection ended. */
export interface ConnectionEnd {
  /** The WebSocket close code; 1006 when the connection was lost without one, 4000 when the client gave up on a silent one. */
  readonly code: number;
  /** The server's close reason by name, or the client's: `heartbeat_timeout` (no reply to a ping), `connection_lost`. */
  readonly reason: CloseReason | 'connection_lost' | 'no_reply' | 'closed_by_client' | 'cannot_connect';
  /** Whether connecting again can help (docs/protocol.md, close codes). */
  readonly reconnect: boolean;
  /** The server's error before it closed (a refused token), when there was one. */
  readonly error: ClientError | undefined;
  /** After 4004: how long the server asked to wait before connecting again (reconnecting sooner is refused). */
  readonly retryAfterMs?: number | undefined;
}

export interface ConnectionOptions {
  readonly url: string;
  readonly token: string;
  readonly openSocket: SocketFactory;
  /** How long a request may wait for its reply. */
  readonly requestTimeoutMs: number;
  /** How long after a ping the connection may stay silent before it is taken for dead. */
  readonly heartbeatReplyTimeoutMs: number;
  readonly onEvent: (event: ServerEvent) => void;
  /** Called once, when the connection has ended for whatever reason. */
  readonly onEnd: (end: ConnectionEnd) => void;
}

interface Waiting {
  readonly expect: string | readonly string[];
  readonly resolve: (frame: never) => void;
  readonly reject: (error: ClientError) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** Writes the request again, ahead of what was never sent (after the pacer's pause). */
  readonly resend: () => void;
  /** Times it was refused by the frame rate limit and written again. */
  resent: number;
}

/**
 * A request refused by the server's frame rate limit was not handled at all,
 * so writing it again after the pause is safe whatever it asks; after this
 * many refusals the caller gets the error.
 */
const MAX_RATE_RESENDS = 3;

const CLOSE_REASONS = new Map<number, CloseReason>(
  Object.entries(CloseCodes).map(([name, entry]) => [entry.code, name as CloseReason]),
);

/**
 * One WebSocket connection to chatd, from `auth` to its end: matches replies to
 * requests by id, paces frames under the server's rate, sends heartbeats and
 * takes a connection that stops answering them for dead (a cut network often
 * closes nothing). It never reconnects; ChatClient does.
 */
export class Connection {
  private readonly socket: SocketLike;
  private readonly waiting = new Map<string, Waiting>();
  private readonly pacer = new Pacer(10);
  private nextId = 1;
  private ended = false;
  private lastFrameAt = Date.now();
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private silenceCheck: ReturnType<typeof setTimeout> | undefined;
  private refusal: ClientError | undefined;
  /** retry_after_ms of the last rate_limited error: the pause a 4004 that follows asks for. */
  private lastRetryAfterMs: number | undefined;
  /** Set by `closeWhenIdle`: closes when this fires or the last waiting request is answered. */
  private retireTimer: ReturnType<typeof setTimeout> | undefined;
  welcome: WelcomeFrame | undefined;

  constructor(private readonly options: ConnectionOptions) {
    this.socket = options.openSocket(options.url);
    this.socket.onmessage = (event) => this.receive(event.data);
    this.socket.onclose = (event) => this.end(this.endFromClose(event.code));
    this.socket.onerror = () => {
      // The close event that follows says what happened.
    };
  }

  /**
   * Opens the connection and authenticates; resolves with `welcome`. `onWelcome`
   * runs in the turn the welcome arrives, before the inbox frames that follow it
   * in the same read are handled (a promise would let them through first).
   */
  open(onWelcome: (welcome: WelcomeFrame) => void): Promise<WelcomeFrame> {
    const authenticated = new Promise<WelcomeFrame>((resolve, reject) => {
      const timer = setTimeout(() => this.abandon('no_reply'), this.options.requestTimeoutMs);
      const welcomed = (welcome: WelcomeFrame): void => {
        this.welcome = welcome;
        this.pacer.setRate(welcome.limits.frames_per_second);
        this.startHeartbeat(welcome.heartbeat_interval_ms);
        onWelcome(welcome);
        resolve(welcome);
      };
      // Its timer runs from the start, the connecting included, and through a resend.
      const resend = (): void => this.write(auth, 'urgent');
      this.waiting.set('auth', { expect: 'welcome', resolve: welcomed as (frame: never) => void, reject, timer, resend, resent: 0 });
    });
    const auth = JSON.stringify({ type: 'auth', id: 'auth', token: this.options.token });
    this.socket.onopen = () => this.write(auth, 'urgent');
    return authenticated;
  }

  /** Sends a request; resolves with its reply, rejects with the server's error or `disconnected`/`timeout`. */
  request<R extends RequestJson>(request: R, timeoutMs = this.options.requestTimeoutMs): Promise<ReplyOf[R['type']]> {
    return new Promise((resolve, reject) => this.send(request, resolve, reject, timeoutMs));
  }

  /**
   * `request` with callbacks, called in the same turn as the reply arrives:
   * for callers that must act before the frames that follow it are handled
   * (an ack before the echo of the message it acks).
   */
  send<R extends RequestJson>(
    request: R,
    onReply: (reply: ReplyOf[R['type']]) => void,
    onError: (error: ClientError) => void,
    timeoutMs = this.options.requestTimeoutMs,
  ): void {
    if (this.ended) return onError(new ClientError('disconnected', 'not connected', true));
    const id = String(this.nextId++);
    const text = JSON.stringify({ ...request, id });
    // The clock starts when the frame is written, not while it waits for the pacer.
    const write = (place: QueuePlace): void =>
      this.write(text, place, () => {
        waiting.timer = setTimeout(() => {
          this.waiting.delete(id);
          onError(new ClientError('timeout', `no reply to ${request.type} within ${timeoutMs} ms`, true));
          this.closeIfIdle();
        }, timeoutMs);
      });
    const resend = (): void => {
      clearTimeout(waiting.timer);
      write('again');
    };
    const waiting: Waiting = { expect: REPLY_TYPE[request.type], resolve: onReply as (frame: never) => void, reject: onError, timer: undefined, resend, resent: 0 };
    this.waiting.set(id, waiting);
    write(request.type === 'ping' ? 'urgent' : 'last');
  }

  /** Closes the connection from this side; `onEnd` is called with `closed_by_client`. */
  close(): void {
    if (this.ended) return;
    try {
      this.socket.close(1000);
    } catch {
      // Closing a socket that never opened throws in some implementations.
    }
    this.end({ code: 1000, reason: 'closed_by_client', reconnect: false, error: undefined });
  }

  /**
   * Closes once no request waits for its reply any more (at once when none
   * does), or after `timeoutMs` at the latest: for a connection another has
   * taken over from, whose callers should get their replies rather than
   * `disconnected`. New requests belong on the other one meanwhile.
   */
  closeWhenIdle(timeoutMs: number): void {
    if (this.ended || this.retireTimer !== undefined) return;
    // No more heartbeats: a ping would keep it busy, and silence no longer matters.
    clearInterval(this.heartbeat);
    this.retireTimer = setTimeout(() => this.close(), timeoutMs);
    this.closeIfIdle();
  }

  private closeIfIdle(): void {
    if (this.retireTimer !== undefined && this.waiting.size === 0) this.close();
  }

  private write(text: string, place: QueuePlace, written?: () => void): void {
    this.pacer.run(() => {
      if (this.ended) return;
      this.socket.send(text);
      written?.();
    }, place);
  }

  private receive(data: unknown): void {
    this.lastFrameAt = Date.now();
    let frame: { type?: unknown; id?: unknown };
    try {
      frame = JSON.parse(String(data)) as typeof frame;
    } catch {
      return; // The server only sends JSON; anything else is ignored rather than trusted.
    }
    if (frame.type === 'error') return this.receiveError(frame as ErrorFrame);
    if (typeof frame.id === 'string') {
      const waiting = this.waiting.get(frame.id);
      if (!waiting) return;
      this.waiting.delete(frame.id);
      clearTimeout(waiting.timer);
      const expected = typeof waiting.expect === 'string' ? [waiting.expect] : waiting.expect;
      if (expected.includes(frame.type as string)) waiting.resolve(frame as never);
      else waiting.reject(new ClientError('bad_reply', `expected ${expected.join(' or ')}, got ${String(frame.type)}`, false));
      this.closeIfIdle();
      return;
    }
    this.options.onEvent(frame as ServerEvent);
  }

  private receiveError(frame: ErrorFrame): void {
    const { code, message, retryable, retry_after_ms: retryAfter, field, missing_devices: missing, extra_devices: extra, limit } = frame.error;
    const details = { ...(field ? { field } : {}), ...(missing ? { missing_devices: missing } : {}), ...(extra ? { extra_devices: extra } : {}), ...(limit ? { limit } : {}) };
    const error = new ClientError(code, message, retryable, undefined, retryAfter, details);
    // A full device-message queue is the receiver's to drain, not this connection's rate: pausing every
    // request on it for that would stall the whole client. The caller keeps the message.
    const queueFull = limit?.startsWith('e2e.max_device_queue_') === true;
    if (code === 'rate_limited' && retryAfter !== undefined && !queueFull) {
      this.pacer.pause(retryAfter);
      this.lastRetryAfterMs = retryAfter;
    }
    const waiting = frame.id === null ? undefined : this.waiting.get(frame.id);
    if (!waiting) return;
    if (isFrameRateRefusal(error) && waiting.resent < MAX_RATE_RESENDS) {
      // Behind the pause just set, ahead of what was never sent.
      waiting.resent++;
      waiting.resend();
      return;
    }
    clearTimeout(waiting.timer);
    this.waiting.delete(frame.id as string);
    // A refused auth is followed by close 4002; keep the reason for it.
    if (frame.id === 'auth') this.refusal = error;
    waiting.reject(error);
    this.closeIfIdle();
  }

  private startHeartbeat(intervalMs: number): void {
    this.heartbeat = setInterval(() => {
      const sentAt = Date.now();
      this.request({ type: 'ping' }).catch(() => {
        // Silence is judged below, by any frame arriving, not by this reply alone.
      });
      this.silenceCheck ??= setTimeout(() => {
        this.silenceCheck = undefined;
        if (this.lastFrameAt < sentAt) this.abandon('heartbeat_timeout');
      }, this.options.heartbeatReplyTimeoutMs);
    }, intervalMs);
  }

  /**
   * Drops a connection that went silent (or that the client cannot use), without
   * waiting for a close handshake that may never come; `onEnd` says to reconnect.
   */
  abandon(reason: 'heartbeat_timeout' | 'no_reply'): void {
    if (this.ended) return;
    const socket = this.socket as SocketLike & { terminate?: () => void };
    try {
      if (socket.terminate) socket.terminate();
      else socket.close(4000, reason);
    } catch {
      // Already closing.
    }
    this.end({ code: 4000, reason, reconnect: true, error: undefined });
  }

  private endFromClose(code: number): ConnectionEnd {
    const reason = CLOSE_REASONS.get(code);
    if (reason === 'rate_limited') return { code, reason, reconnect: true, error: this.refusal, retryAfterMs: this.lastRetryAfterMs };
    if (reason) return { code, reason, reconnect: CloseCodes[reason].reconnect, error: this.refusal };
    return { code, reason: 'connection_lost', reconnect: true, error: this.refusal };
  }

  private end(end: ConnectionEnd): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.silenceCheck);
    clearTimeout(this.retireTimer);
    this.pacer.stop();
    this.socket.onmessage = null;
    this.socket.onclose = null;
    this.socket.onopen = null;
    const failure = end.error ?? new ClientError('disconnected', `connection ended (${end.reason})`, true);
    for (const waiting of this.waiting.values()) {
      clearTimeout(waiting.timer);
      waiting.reject(failure);
    }
    this.waiting.clear();
    this.options.onEnd(end);
  }
}
