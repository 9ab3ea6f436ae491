import type { WelcomeFrame } from '../protocol/frames.js';
import { Connection, type ConnectionEnd, type ServerEvent } from './connection.js';
import { type SocketLike, webSocketUrl } from './socket.js';
import { type AttemptEnd, type PolicyClock, type TransportKind, TransportPolicy } from './transport-policy.js';
import type { TransportChange } from './types.js';

/**
 * A connection cut sooner than this after its welcome counts against its
 * transport; a background try of the WebSocket must have lived this long
 * beside the fallback before it takes over.
 */
export const SHORT_LIVED_MS = 3000;

export interface TransportSwitchOptions {
  /** The server's HTTP base URL. */
  readonly server: string;
  readonly token: string;
  /** In order of preference. */
  readonly transports: readonly TransportKind[];
  readonly websocketRetryMs: number;
  readonly connectTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly heartbeatReplyTimeoutMs: number;
  readonly clock: PolicyClock;
  /** The socket of one attempt: a WebSocket to `url`, or a stream socket to the server. May throw (a URL the WebSocket refuses). */
  readonly openSocket: (kind: TransportKind, url: string) => SocketLike;
  /** The connection the client uses now, once it is welcomed: a background try goes beside it only. */
  readonly ready: () => Connection | undefined;
  readonly onEvent: (connection: Connection, event: ServerEvent) => void;
  /** A connection made by `connect` ended (the end of a background try is the switch's own business). */
  readonly onEnd: (connection: Connection, end: ConnectionEnd) => void;
  /** A background try of the WebSocket takes over: the client moves to it in this turn (receiver, outbox, catch-up). */
  readonly takeOver: (connection: Connection, welcome: WelcomeFrame) => void;
  readonly transportChanged: (change: TransportChange) => void;
}

/** One connection attempt: its transport, its socket, when it authenticated. */
interface Attempt {
  readonly kind: TransportKind;
  socket: SocketLike | undefined;
  welcomedAt: number | undefined;
  connectTimer: unknown;
}

/**
 * The connections of a client and the transport each uses (the policy:
 * transport-policy.ts). Makes each connection on the policy's transport, tells
 * the policy how each ended, and while on a fallback runs the background tries
 * of the WebSocket: a second connection beside the one that is up, which takes
 * over once it has been authenticated for SHORT_LIVED_MS (make before break).
 * The fallback it replaces is closed only once the requests waiting on it are
 * answered (or timed out), so a caller never gets `disconnected` for a healthy
 * switch; what the outbox had in flight on it is sent again on the new one
 * (sends are deduplicated), and the new connection's catch-up brings whatever
 * the fallback had not handed out, so nothing is lost and nothing given twice.
 */
export class TransportSwitch {
  private readonly policy: TransportPolicy;
  private readonly attempts = new WeakMap<Connection, Attempt>();
  private current: TransportKind | undefined;
  /** The connection `connect` made, or the try that took over from it. */
  private main: Connection | undefined;
  private probe: { readonly connection: Connection; welcome: WelcomeFrame | undefined } | undefined;
  /** Connections taken over from, closing once their waiting requests are answered. */
  private readonly retiring = new Set<Connection>();
  private stopped = false;

  constructor(private readonly options: TransportSwitchOptions) {
    this.policy = new TransportPolicy({
      transports: options.transports,
      retryPreferredMs: options.websocketRetryMs,
      shortLivedMs: SHORT_LIVED_MS,
      failuresToFallBack: 2,
      clock: options.clock,
      probe: () => this.startProbe(),
      switchBack: () => this.switchBack(),
    });
  }

  /** The transport of the connection that authenticated last (or took over last). */
  get transport(): TransportKind | undefined {
    return this.current;
  }

  /**
   * A connection on the transport the policy picks, opened; `welcomed` runs in
   * the turn its welcome arrives. Throws when its socket cannot be made.
   */
  connect(welcomed: (connection: Connection, welcome: WelcomeFrame) => void): Connection {
    const connection = this.newConnection(this.policy.next);
    this.main = connection;
    connection
      .open((welcome) => {
        this.authenticated(connection);
        welcomed(connection, welcome);
      })
      .catch(() => {
        // The connection's end (already reported or on its way) says why.
      });
    return connection;
  }

  /** The client is closing: no more tries; a try and connections taken over from are closed. */
  stop(): void {
    this.stopped = true;
    this.policy.stop();
    this.probe?.connection.close();
    for (const connection of [...this.retiring]) connection.close();
  }

  private newConnection(kind: TransportKind): Connection {
    const { clock, server } = this.options;
    const attempt: Attempt = { kind, socket: undefined, welcomedAt: undefined, connectTimer: undefined };
    const connection: Connection = new Connection({
      url: kind === 'websocket' ? webSocketUrl(server) : server,
      token: this.options.token,
      openSocket: (url) => (attempt.socket = this.options.openSocket(kind, url)),
      requestTimeoutMs: this.options.requestTimeoutMs,
      heartbeatReplyTimeoutMs: this.options.heartbeatReplyTimeoutMs,
      onEvent: (event) => this.options.onEvent(connection, event),
      onEnd: (end) => this.ended(connection, attempt, end),
    });
    this.attempts.set(connection, attempt);
    // A WebSocket that never opens, a stream a buffering proxy holds back: no welcome in time is a failure of the transport.
    attempt.connectTimer = clock.setTimeout(() => {
      if (attempt.welcomedAt === undefined) connection.abandon('no_reply');
    }, this.options.connectTimeoutMs);
    return connection;
  }

  private ended(connection: Connection, attempt: Attempt, end: ConnectionEnd): void {
    const { clock } = this.options;
    clock.clearTimer(attempt.connectTimer);
    this.retiring.delete(connection);
    if (connection === this.probe?.connection) {
      // A background try that never took over: the fallback carries on.
      this.probe = undefined;
      this.policy.probeEnded(false);
      return;
    }
    // A stream socket says why its open failed (the server unreachable, or refusing): a WebSocket has no such field.
    const failure = (attempt.socket as { failure?: AttemptEnd['failure'] } | undefined)?.failure;
    this.policy.ended(attempt.kind, { welcomedAt: attempt.welcomedAt, endedAt: clock.now(), code: end.code, failure });
    if (connection === this.main) {
      this.main = undefined;
      this.probe?.connection.close();
    }
    this.options.onEnd(connection, end);
  }

  private welcomedAt(connection: Connection): Attempt {
    const attempt = this.attempts.get(connection) as Attempt;
    attempt.welcomedAt = this.options.clock.now();
    this.options.clock.clearTimer(attempt.connectTimer);
    return attempt;
  }

  /** A connection got its welcome: its transport is the client's now. */
  private authenticated(connection: Connection): void {
    this.becameCurrent(this.welcomedAt(connection));
  }

  private becameCurrent(attempt: Attempt): void {
    this.policy.up(attempt.kind);
    const previous = this.current;
    this.current = attempt.kind;
    if (previous !== attempt.kind) this.options.transportChanged({ transport: attempt.kind, previous });
  }

  /** While on a fallback, the policy's periodic try of the WebSocket: a second connection beside the one that is up. */
  private startProbe(): void {
    if (this.stopped || !this.options.ready() || this.probe) return this.policy.probeEnded(false);
    let connection: Connection;
    try {
      connection = this.newConnection(this.policy.preferred);
    } catch {
      return this.policy.probeEnded(false);
    }
    const probe = { connection, welcome: undefined as WelcomeFrame | undefined };
    this.probe = probe;
    connection
      .open((welcome) => {
        this.welcomedAt(connection);
        probe.welcome = welcome;
        // Not yet: a proxy that kills upgraded connections does it right after the welcome. Until it takes over,
        // its events are dropped (the fallback gets the same ones) and the fallback carries on untouched.
        this.policy.probeWelcomed();
      })
      .catch(() => {
        // Its end says why (ended).
      });
  }

  /** The try has lived SHORT_LIVED_MS past its welcome: it takes over, and the fallback closes once its callers have their replies. */
  private switchBack(): void {
    const probe = this.probe;
    const old = this.main;
    if (!probe) return;
    if (!probe.welcome || this.stopped || !old || this.options.ready() !== old) return probe.connection.close();
    this.probe = undefined;
    this.main = probe.connection;
    this.policy.probeEnded(true);
    this.becameCurrent(this.attempts.get(probe.connection) as Attempt);
    this.options.takeOver(probe.connection, probe.welcome);
    this.retiring.add(old);
    old.closeWhenIdle(this.options.requestTimeoutMs);
  }
}
