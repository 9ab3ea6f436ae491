import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import { ChatError, type CloseReason, CloseCodes, isChatError, unavailableError } from '../errors.js';
import { FrameError, decodeClientFrame, readableId } from '../protocol/decode.js';
import { encodeFrame, errorFrame } from '../protocol/encode.js';
import type { AuthFrame, ClientFrame, ServerFrame } from '../protocol/frames.js';
import type { ChannelRegistry, Follower, LiveLink } from '../realtime/channels.js';
import type { LiveSession, SessionRegistry } from '../realtime/sessions.js';
import type { AccountService } from '../services/accounts.js';
import type { AuditLog } from '../services/audit.js';
import type { DeliveryService } from '../services/delivery.js';
import type { MessagingService } from '../services/messaging.js';
import type { DeviceLinks } from '../services/live/device-links.js';
import type { PresenceService } from '../services/presence.js';
import type { ConnectionLimits, ConnectionSlot } from '../services/limits/connection-limits.js';
import { TokenBucket } from '../services/limits/token-bucket.js';
import type { Principal } from '../services/types.js';
import { clientAddress } from '../transport/client-address.js';
import type { Connection, ConnectionListener } from '../transport/types.js';
import { type AckThenAnnounce, type ChatFrame, type RequestFrame, ackFrame, chatHandlers } from './handlers.js';
import { InboxDrain } from './inbox-drain.js';
import { welcomeFrame } from './wire.js';

/**
 * A frame the rate limit refuses is answered with its id when it is at most
 * this long (characters, so at most 3 bytes each): a request, or a send of a
 * short message. Longer ones are answered with id null.
 */
export const RATE_REFUSED_ID_MAX_LENGTH = 1024;

export interface SessionSettings {
  readonly authTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly heartbeatTimeoutMs: number;
  readonly maxFrameBytes: number;
  readonly maxBodyBytes: number;
  readonly framesPerSecond: number;
  readonly maxRefusedFrames: number;
  readonly maxBufferedBytes: number;
  readonly historyPageMax: number;
  readonly maxGroupMembers: number;
  readonly userSendsPerSecond: number;
  readonly maxConnectionsPerDevice: number;
  /** http.trust_proxy: the client address is the last X-Forwarded-For hop of the upgrade request. */
  readonly trustProxy: boolean;
}

export interface SessionDeps {
  /** The token check: a round trip on a networked engine, always awaited. */
  readonly accounts: {
    authenticate(token: string, address: string): Promise<Principal>;
    deviceConnected: AccountService['deviceConnected'];
  };
  readonly limits: ConnectionLimits;
  /** What the session itself uses of the services (the handlers use the rest). */
  readonly services: {
    readonly presence: Pick<PresenceService, 'connected' | 'disconnected'>;
    /** The send is the session's own, so that its order (store, ack, announce) reads in one function. */
    readonly messaging: Pick<MessagingService, 'send' | 'announce'>;
  };
  readonly handlers: ReturnType<typeof chatHandlers>;
  readonly registry: Pick<SessionRegistry, 'add' | 'remove'>;
  readonly channels: Pick<ChannelRegistry, 'join' | 'leave'>;
  /** Which device is live on which connection: this session's link is attached once it has authenticated. */
  readonly links: Pick<DeviceLinks<LiveLink>, 'attach'>;
  /** The inbox before live, and the handover when the connection ends. */
  readonly delivery: Pick<DeliveryService, 'connectionOpened' | 'connectionLive' | 'connectionClosed' | 'inboxPage'>;
  /** A key for this session's link, unique across nodes. */
  readonly linkKey: () => string;
  readonly clock: Clock;
  readonly log: Logger;
  /** Refused tokens and rate-limit hits are recorded here (once per connection for the frame limit, not per frame). */
  readonly audit: AuditLog;
  readonly epoch: string;
  readonly settings: SessionSettings;
}

/**
 * One WebSocket connection's life: authenticate with the first frame, send the
 * offline inbox, then follow the user's threads live and answer each request
 * exactly once. Any frame after authentication counts as a sign of life and
 * moves the heartbeat deadline. The only place that turns service results into
 * wire frames (through handlers.ts).
 */
export class Session implements ConnectionListener, LiveSession {
  private principal: Principal | undefined;
  /** This connection as the live seams know it, from authentication on. */
  private link: LiveLink | undefined;
  /** Frames that came while the auth frame was being checked: handled, in order, right after the welcome (bounded by the frame rate limit and the auth timeout). */
  private waiting: ClientFrame[] | undefined;
  private closed = false;
  /** Follows its user's and threads' live events (after inbox_done): events for this device alone may come now. */
  private following = false;
  /** Frames refused in a row (rate limit or garbage); a streak past the limit closes the connection. */
  private refusedInARow = 0;
  /**
   * The limits this connection was refused by, audited once each: a flood would otherwise write a line per frame.
   * Made at the first refusal: an idle connection pays for no set.
   */
  private auditedLimits: Set<string> | undefined;
  private readonly limiter: TokenBucket;
  /** What this connection holds of the limits across connections; undefined when it was refused at open. */
  private readonly slot: ConnectionSlot | undefined;
  /** The client's address (behind a trusted proxy, the one it forwarded). */
  private readonly address: string;
  /** Set while the offline inbox is being sent. */
  private drain: InboxDrain | undefined;
  deadline: number;

  constructor(
    private readonly connection: Connection,
    private readonly deps: SessionDeps,
  ) {
    this.deadline = deps.clock.now() + deps.settings.authTimeoutMs;
    // A burst of two seconds' worth, refilled at frames_per_second.
    this.limiter = new TokenBucket(deps.clock, { burst: 2 * deps.settings.framesPerSecond, refillMs: 2000 });
    this.address = clientAddress(connection.remoteAddress, connection.forwardedFor, deps.settings.trustProxy);
    try {
      this.slot = deps.limits.open(this.address);
    } catch (error) {
      // Told why and when to come back, then closed. Never registered: the transport may report
      // the close of a connection it is still opening before this constructor returns, or not at all.
      this.slot = undefined;
      this.auditLimit(error as ChatError);
      this.send(errorFrame(null, error as ChatError));
      this.close('rate_limited', (error as ChatError).message);
      return;
    }
    deps.registry.add(this);
  }

  get deviceId(): number | undefined {
    return this.principal?.deviceId;
  }

  get userId(): number | undefined {
    return this.principal?.user.id;
  }

  onMessage(text: string): void {
    if (this.closed || !this.admit(text)) return;
    let frame: ClientFrame;
    try {
      frame = decodeClientFrame(text, this.deps.settings.maxFrameBytes);
    } catch (error) {
      const failure = error as FrameError;
      this.refuse('policy_violation', failure.requestId, failure);
      return;
    }
    this.refusedInARow = 0;
    if (this.waiting) {
      this.waiting.push(frame);
      return;
    }
    if (!this.principal) {
      if (frame.type === 'auth') this.authenticate(frame).catch((error: unknown) => this.broke(error));
      else this.send(errorFrame(frame.id, new ChatError('unauthorized', 'authenticate first: send {"type":"auth","id":"…","token":"…"}')));
      return;
    }
    this.handle(frame, this.principal);
  }

  /** An authenticated connection's frame. */
  private handle(frame: ClientFrame, principal: Principal): void {
    this.deadline = this.deps.clock.now() + this.deps.settings.heartbeatTimeoutMs;
    switch (frame.type) {
      case 'auth':
        this.send(errorFrame(frame.id, new ChatError('bad_request', 'this connection is already authenticated')));
        return;
      case 'ping':
        this.send({ type: 'pong', id: frame.id });
        return;
      default:
        this.dispatch(frame, principal);
    }
  }

  onBinary(): void {
    if (this.closed || !this.admit()) return;
    this.refuse('policy_violation', null, new ChatError('invalid_frame', 'binary frames are not accepted; send JSON text frames'));
  }

  onDrain(): void {
    this.drain?.continue().catch((error: unknown) => this.broke(error));
  }

  onClose(code: number, reason: string): void {
    this.closed = true;
    this.slot?.release();
    this.deps.registry.remove(this);
    this.drain?.stop();
    const link = this.link;
    if (link) {
      const { channels, delivery, services, log } = this.deps;
      // Unsubscribed first: the handover writes what this connection got live, and nothing more comes to it.
      channels.leave(link);
      delivery.connectionClosed(link).catch((error: unknown) => log.error({ err: error, device: link.deviceId }, 'handing the device over to its inbox failed'));
      services.presence.disconnected(link.userId, link.key);
    }
    this.deps.log.debug({ device: this.principal?.deviceId, code, reason }, 'connection closed');
  }

  /** Called by the registry's sweep once the deadline has passed. */
  expire(): void {
    if (this.principal) this.close('heartbeat_timeout', `no frame for ${this.deps.settings.heartbeatTimeoutMs} ms`);
    else this.close('auth_timeout', `not authenticated within ${this.deps.settings.authTimeoutMs} ms`);
  }

  /**
   * An event of the device's or the user's channel (a device message, presence, a receipt); before the inbox is
   * through, the client fetches those itself. A direct send: the transport sends what its topics queued for this
   * connection first, so the order of the connection's frames is kept.
   */
  deliver(text: string): void {
    if (this.following) this.sendText(text);
  }

  /** Called by the registry's sweep: frames published to this connection pile up unread. */
  checkBackpressure(): void {
    if (this.connection.bufferedAmount() > this.deps.settings.maxBufferedBytes) this.cutSlowConsumer();
  }

  close(reason: CloseReason, message: string): void {
    if (this.closed) return;
    this.closed = true;
    this.slot?.release();
    this.connection.close(CloseCodes[reason].code, message);
  }

  private dispatch(frame: ChatFrame, principal: Principal): void {
    if (frame.type === 'send') {
      this.sendMessage(frame, principal).catch((error: unknown) => this.fail(frame.id, error));
      return;
    }
    const handler = this.deps.handlers[frame.type] as (f: RequestFrame, p: Principal) => Promise<ServerFrame | AckThenAnnounce>;
    handler(frame, principal).then((reply) => this.answer(reply), (error: unknown) => this.fail(frame.id, error));
  }

  /** A handler's reply; an ack of a stored change is followed, in the same gathered turn, by its announcement (as sendMessage does). */
  private answer(reply: ServerFrame | AckThenAnnounce): void {
    if (!('announce' in reply)) {
      this.send(reply);
      return;
    }
    this.connection.gather(() => {
      this.send(reply.reply);
      try {
        reply.announce();
      } catch (error) {
        this.deps.log.error({ err: error }, 'announcing a stored change failed');
      }
    });
  }

  /**
   * The message path in order: store (resolves after commit), then in one
   * gathered turn the ack and the announcement (fanout to the thread, then the
   * push wake-up). The sender hears its ack before the thread's event, and
   * acks and events of one commit leave in seq order. A duplicate is acked
   * again and not announced: it went out the first time.
   */
  private async sendMessage(frame: Extract<ChatFrame, { type: 'send' }>, principal: Principal): Promise<void> {
    const { messaging } = this.deps.services;
    const { message, duplicate } = await messaging.send(principal, {
      threadId: frame.thread_id,
      clientMsgId: frame.client_msg_id,
      kind: frame.kind,
      bodyJson: frame.body_json,
      attachments: frame.attachments,
      replyTo: frame.reply_to,
      mentions: frame.mentions,
    });
    this.connection.gather(() => {
      this.send(ackFrame(frame.id, message, duplicate));
      if (duplicate) return;
      try {
        messaging.announce(message);
      } catch (error) {
        // The message is stored and acked; a fanout failure is ours to log, not the client's error.
        this.deps.log.error({ err: error }, 'announcing a stored message failed');
      }
    });
  }

  /**
   * A failure no request waits for (storage failing while the inbox is read, a
   * bug): logged, and this connection ends with 1011 (come back); the process
   * and every other connection go on.
   */
  private broke(error: unknown): void {
    this.deps.log.error({ err: error, device: this.principal?.deviceId }, 'connection failed');
    this.close('internal_error', 'the server failed on this connection; reconnect');
  }

  private fail(id: string, error: unknown): void {
    if (isChatError(error)) {
      if (error.code === 'rate_limited') this.auditLimit(error);
      this.send(errorFrame(id, error));
      // The device's token stopped working while the request was on its way (a revocation, perhaps by
      // another process, that the registry has not acted on yet): this connection ends as the registry would end it.
      if (error.code === 'unauthorized' || error.code === 'account_disabled') this.close('device_revoked', error.message);
      return;
    }
    const unavailable = unavailableError(error);
    if (unavailable) {
      this.deps.log.warn({ err: error, device: this.principal?.deviceId }, 'request failed: an engine is unavailable');
      this.send(errorFrame(id, unavailable));
      return;
    }
    this.deps.log.error({ err: error, device: this.principal?.deviceId }, 'request failed');
    this.send(errorFrame(id, new ChatError('internal', 'the server failed to handle this request; it has been logged')));
  }

  /**
   * Spends the rate limit on a frame before anything else is done with it, so
   * that frames of every kind count, refused ones (binary, unreadable, before
   * auth) included: otherwise garbage would be a way past the limit. False when
   * the frame is over the limit: it was answered with rate_limited, carrying
   * its id when it has a readable one, and not handled.
   */
  private admit(text?: string): boolean {
    const allowed = this.limiter.take();
    if (allowed.allowed) return true;
    const refused = new ChatError('rate_limited', `more than ${this.deps.settings.framesPerSecond} frames per second`, {
      retryAfterSeconds: allowed.retryAfterSeconds,
      details: { limit: 'websocket.frames_per_second' },
    });
    this.auditLimit(refused);
    // Its id only when small: reading it costs a parse, and frames over the limit must stay cheap to refuse
    // (a streak of them is cut short by any frame let through, so the streak's limit does not bound it).
    const id = text !== undefined && text.length <= RATE_REFUSED_ID_MAX_LENGTH ? readableId(text) : null;
    this.refuse('rate_limited', id, refused);
    return false;
  }

  /** Audits a refusal by a limit, once per limit and connection; the limit's config key travels in the error's details. */
  private auditLimit(error: ChatError): void {
    const limit = typeof error.details?.limit === 'string' ? error.details.limit : 'unknown';
    if (this.auditedLimits?.has(limit)) return;
    (this.auditedLimits ??= new Set()).add(limit);
    this.deps.audit.record('rate_limited', {
      limit,
      reason: 'refused',
      userId: this.principal?.user.id,
      deviceId: this.principal?.deviceId,
      address: this.address,
      retryAfterSeconds: error.retryAfterSeconds,
    });
  }

  /** Answers a refused frame; a long enough streak of them is abuse and closes the connection. */
  private refuse(reason: 'rate_limited' | 'policy_violation', id: string | null, error: ChatError): void {
    this.refusedInARow++;
    if (this.refusedInARow >= this.deps.settings.maxRefusedFrames) {
      if (reason === 'policy_violation') {
        this.close(reason, 'too many invalid frames');
        return;
      }
      // The pause 4004 asks for is enforced: reconnecting during it is refused, so it does not reset the limit.
      const seconds = Math.max(1, this.slot?.flooded() ?? 0);
      const pause = new ChatError('rate_limited', `too many frames; reconnect in ${seconds} s`, {
        retryAfterSeconds: seconds,
        details: { limit: 'limits.pause_after_flood_seconds' },
      });
      this.auditLimit(pause);
      this.send(errorFrame(null, pause));
      this.close(reason, pause.message);
      return;
    }
    this.send(errorFrame(id, error));
  }

  /**
   * Checks the token (async: a password-grade check, and a network round trip
   * on a networked store). Frames that arrive meanwhile wait and are handled
   * after the welcome, in order: a client that pipelines requests behind its
   * auth frame is answered as if it had waited (the SDK waits for the welcome).
   */
  private async authenticate(frame: AuthFrame): Promise<void> {
    const { accounts, clock, settings, epoch, services, links, delivery } = this.deps;
    let principal: Principal;
    this.waiting = [];
    try {
      this.slot?.authAttempt();
      const found = await accounts.authenticate(frame.token, this.address);
      // Closed while the token was checked (auth timeout, the client left): its slot is released; taking a live place now would leak it.
      if (this.closed) return;
      this.slot?.authenticated(found.user.id, found.deviceId);
      principal = found;
    } catch (error) {
      this.waiting = undefined;
      if (!isChatError(error)) {
        // The token could not be checked (a storage failure), which says nothing about the token: this
        // connection ends and may come back (1011), the process and every other connection go on.
        this.deps.log.error({ err: error }, 'checking a token failed');
        this.send(errorFrame(frame.id, new ChatError('internal', 'the server failed to check the token; it has been logged')));
        this.close('internal_error', 'the token could not be checked');
        return;
      }
      this.send(errorFrame(frame.id, error));
      // A limit says when to come back (4004); a refused token says not to (4002).
      const limited = error.code === 'rate_limited';
      if (limited) this.auditLimit(error);
      this.close(limited ? 'rate_limited' : 'auth_failed', error.message);
      return;
    }
    const waiting = this.waiting;
    this.waiting = undefined;
    if (this.closed) return;
    this.principal = principal;
    this.deadline = clock.now() + settings.heartbeatTimeoutMs;
    const link = new SessionLink(this.deps.linkKey(), principal.deviceId, principal.user.id, this.connection, this);
    this.link = link;
    links.attach(link);
    accounts.deviceConnected(principal);
    this.send(welcomeFrame(frame.id, principal, epoch, settings));
    services.presence.connected(principal.user.id, link.key);
    for (const waited of waiting) if (!this.closed) this.handle(waited, principal);
    try {
      // The device's previous connection may have just ended: its unacknowledged messages are on their way to the inbox.
      await delivery.connectionOpened(link);
    } catch (error) {
      this.close('internal_error', `the inbox could not be written: ${String(error)}`);
      return;
    }
    if (this.closed) return;
    this.drain = new InboxDrain(link.deviceId, {
      delivery,
      clock,
      maxBufferedBytes: settings.maxBufferedBytes,
      bufferedAmount: () => this.connection.bufferedAmount(),
      sendText: (text) => this.sendText(text),
      isClosed: () => this.closed,
      done: (count, overflow, threadIds) => this.followLive(link, count, overflow, threadIds),
      failed: (error) => this.close('internal_error', `the inbox could not be read: ${String(error)}`),
    });
    await this.drain.continue();
  }

  /** The inbox is through (called in the continuation of its last read: see InboxDrain): from now on the connection follows its channels live. */
  private followLive(link: LiveLink, count: number, overflow: boolean, threadIds: readonly number[]): void {
    const { delivery, channels, log } = this.deps;
    this.drain = undefined;
    this.send({ type: 'inbox_done', count, overflow });
    if (this.closed) return;
    channels.join(link, threadIds);
    this.following = true;
    delivery.connectionLive(link).catch((error: unknown) => log.error({ err: error, device: link.deviceId }, 'marking the device live failed'));
  }

  private send(frame: ServerFrame): void {
    this.sendText(encodeFrame(frame));
  }

  private sendText(text: string): void {
    if (this.closed) return;
    const status = this.connection.send(text);
    if (status === 'dropped' || this.connection.bufferedAmount() > this.deps.settings.maxBufferedBytes) this.cutSlowConsumer();
  }

  private cutSlowConsumer(): void {
    this.deps.log.info({ device: this.principal?.deviceId, buffered: this.connection.bufferedAmount() }, 'slow consumer disconnected');
    this.close('slow_consumer', 'too much unread data queued; reconnect and sync');
  }
}

/** A session as the live seams hold it. Methods, not closures: every idle connection has one. */
class SessionLink implements LiveLink {
  constructor(
    readonly key: string,
    readonly deviceId: number,
    readonly userId: number,
    readonly follower: Follower,
    private readonly session: Session,
  ) {}

  deliver(text: string): void {
    this.session.deliver(text);
  }

  close(reason: 'device_revoked', message: string): void {
    this.session.close(reason, message);
  }
}
