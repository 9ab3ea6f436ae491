import { CloseCodes } from '../errors.js';

/** How the client reaches the server: a WebSocket, an event stream with POSTs up, or long polls with POSTs up. */
export type TransportKind = 'websocket' | 'stream' | 'poll';

export const DEFAULT_TRANSPORTS: readonly TransportKind[] = ['websocket', 'stream', 'poll'];

/** The timers the policy uses (the client's are the platform's; a test's a fake clock). */
export interface PolicyClock {
  now(): number;
  setTimeout(run: () => void, ms: number): unknown;
  clearTimer(timer: unknown): void;
}

export const platformClock: PolicyClock = {
  now: () => Date.now(),
  setTimeout: (run, ms) => setTimeout(run, ms),
  clearTimer: (timer) => clearTimeout(timer as ReturnType<typeof setTimeout>),
};

/** How one connection attempt ended, as far as the choice of transport cares. */
export interface AttemptEnd {
  /** When its welcome came; undefined when it never authenticated. */
  readonly welcomedAt: number | undefined;
  readonly endedAt: number;
  /** Its close code: 1006 lost, 4000 the client gave up on a silent one, else the server's (or 1000, the client's own). */
  readonly code: number;
  /** A stream or poll attempt whose open got no answer at all (`unreachable`) or an HTTP error (`refused`). */
  readonly failure?: 'unreachable' | 'refused' | undefined;
}

export interface TransportPolicyOptions {
  /** In order of preference. */
  readonly transports: readonly TransportKind[];
  /** While on a fallback, how often the first transport is tried again in the background. */
  readonly retryPreferredMs: number;
  /** A connection that ends sooner than this after its welcome counts as a failure of its transport. */
  readonly shortLivedMs: number;
  /** Failures in a row of one transport before the next is used. */
  readonly failuresToFallBack: number;
  readonly clock: PolicyClock;
  /** Called when it is time to try the first transport again beside the fallback that is up. */
  readonly probe: () => void;
  /** Called when that try has been authenticated for `shortLivedMs` and is still up: time to move to it. */
  readonly switchBack: () => void;
}

/** Codes the server closes with on purpose (a rate limit, a revoked device…): they say nothing about the transport. */
const SERVER_CODES = new Set<number>(Object.values(CloseCodes).map((entry) => entry.code));

/**
 * Which transport the next connection uses. The first of the list (the
 * WebSocket) until it fails `failuresToFallBack` times in a row — it cannot
 * open, nothing answers within the connect timeout, or it dies soon after its
 * welcome (a proxy that kills upgraded connections) — then the next one, which
 * is left the same way (a stream a buffering proxy holds back gets no welcome
 * in time: poll is next). The last one failing goes back to the first, and so
 * does a fallback whose open could not reach the server at all: the server
 * is down, not the WebSocket blocked, and the WebSocket is tried first again.
 * While a fallback is up the first transport is tried in the background every
 * `retryPreferredMs`; the client switches back when such a try has been
 * authenticated for `shortLivedMs` and is still up (one a proxy kills right
 * after its welcome never takes over: the fallback goes on untouched, no
 * flapping between the two).
 * Closes the server chose (rate limits, a revoked device, a restart) do not
 * count either way.
 */
export class TransportPolicy {
  private index = 0;
  private failures = 0;
  /** The transport of the connection that is up, if one is. */
  private upOn: TransportKind | undefined;
  private nextProbeAt = 0;
  private probeTimer: unknown;
  private probing = false;
  private switchTimer: unknown;

  constructor(private readonly options: TransportPolicyOptions) {
    if (options.transports.length === 0) throw new Error('transports: give at least one of websocket, stream, poll');
  }

  /** The transport the next connection attempt uses. */
  get next(): TransportKind {
    return this.options.transports[this.index] as TransportKind;
  }

  get preferred(): TransportKind {
    return this.options.transports[0] as TransportKind;
  }

  /** A connection on `kind` was welcomed: on a fallback, the background tries of the first transport start (or go on). */
  up(kind: TransportKind): void {
    this.upOn = kind;
    this.schedule();
  }

  /** A connection on `kind` ended (not a background try: see `probeEnded`). */
  ended(kind: TransportKind, end: AttemptEnd): void {
    if (this.upOn === kind) this.down();
    // A late report about a transport already left behind changes nothing.
    if (kind !== this.next) return;
    if (end.code === 1000) return;
    if (this.index > 0 && end.failure !== undefined) return this.moveTo(0);
    // After a welcome only a quick cut counts (a proxy that kills upgraded connections), not silence: a
    // stalled network is no reason to leave the WebSocket.
    const failed = end.welcomedAt === undefined || (end.code === 1006 && end.endedAt - end.welcomedAt < this.options.shortLivedMs);
    if (!failed || SERVER_CODES.has(end.code)) {
      this.failures = 0;
      return;
    }
    if (++this.failures >= this.options.failuresToFallBack) this.moveTo(this.index + 1 < this.options.transports.length ? this.index + 1 : 0);
  }

  /** The background try of the first transport was welcomed: `switchBack` is called if it is still up `shortLivedMs` later. */
  probeWelcomed(): void {
    if (!this.probing || this.switchTimer !== undefined) return;
    this.switchTimer = this.options.clock.setTimeout(() => {
      this.switchTimer = undefined;
      if (this.probing) this.options.switchBack();
    }, this.options.shortLivedMs);
  }

  /** The background try of the first transport took over (`switched`), or ended without: the next is due `retryPreferredMs` later. */
  probeEnded(switched: boolean): void {
    this.probing = false;
    this.clearSwitch();
    if (switched) {
      this.moveTo(0);
      this.upOn = this.preferred;
      return;
    }
    this.nextProbeAt = this.options.clock.now() + this.options.retryPreferredMs;
    this.schedule();
  }

  /** The client is closing: no more background tries. */
  stop(): void {
    this.down();
    this.clearSwitch();
  }

  private clearSwitch(): void {
    if (this.switchTimer !== undefined) this.options.clock.clearTimer(this.switchTimer);
    this.switchTimer = undefined;
  }

  private down(): void {
    this.upOn = undefined;
    if (this.probeTimer !== undefined) this.options.clock.clearTimer(this.probeTimer);
    this.probeTimer = undefined;
  }

  private moveTo(index: number): void {
    this.index = index;
    this.failures = 0;
    if (index > 0) this.nextProbeAt = this.options.clock.now() + this.options.retryPreferredMs;
  }

  private schedule(): void {
    const { clock } = this.options;
    if (this.upOn === undefined || this.upOn === this.preferred || this.probing || this.probeTimer !== undefined) return;
    this.probeTimer = clock.setTimeout(() => {
      this.probeTimer = undefined;
      if (this.upOn === undefined || this.upOn === this.preferred) return;
      this.probing = true;
      this.options.probe();
    }, Math.max(0, this.nextProbeAt - clock.now()));
  }
}
