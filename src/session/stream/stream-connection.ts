import { timingSafeEqual } from 'node:crypto';
import type { Connection, ConnectionListener, SendStatus } from '../../transport/types.js';
import { ResumeBuffer } from './resume-buffer.js';
import type { Sink, SinkOwner } from './sinks.js';
import { closeEvent } from './sse.js';
import type { StreamTopics } from './topics.js';

/** The session as the stream side needs it: a listener that knows, once authenticated, its device. */
export interface StreamListener extends ConnectionListener {
  readonly deviceId: number | undefined;
}

export interface StreamConnectionDeps {
  readonly topics: StreamTopics;
  readonly resumeFrames: number;
  readonly maxBufferedBytes: number;
  /** How long a session that ended with no response to tell it on waits for its client to come for the close event. */
  readonly lingerMs: number;
  /** The connection is over and its close event delivered (or given up): its sid is no more. */
  readonly forget: (connection: StreamConnection) => void;
  readonly onError: (error: unknown, where: string) => void;
}

/**
 * One stream session's connection, as the Session writes through it: frames are numbered into the
 * resume buffer and written to whichever response is live (stream or poll), or wait there between
 * responses. Lives from the open until the session closes, not with one HTTP response.
 */
export class StreamConnection implements Connection, SinkOwner {
  readonly buffer: ResumeBuffer;
  private listener: StreamListener | undefined;
  private sink: Sink | undefined;
  private closed = false;
  private closeText: string | undefined;
  private readonly topics = new Set<string>();

  constructor(
    readonly sid: string,
    readonly remoteAddress: string,
    readonly forwardedFor: string | undefined,
    /**
     * The open's auth token: a POST that comes before the welcome is matched by it, and once the
     * session is authenticated (with this token, its first frame) a request that bears it is the
     * session's device without a lookup (a revoked device's sessions are closed).
     */
    private readonly openToken: string | undefined,
    private readonly deps: StreamConnectionDeps,
  ) {
    this.buffer = new ResumeBuffer(deps.resumeFrames, deps.maxBufferedBytes);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The session; set once its constructor returned (it may have closed the connection already). */
  listen(listener: StreamListener): void {
    this.listener = listener;
  }

  /** Whether the device that sent `token` (authenticated as `deviceId`) is this session's. */
  belongsTo(deviceId: number, token: string): boolean {
    const own = this.listener?.deviceId;
    if (own !== undefined) return own === deviceId;
    return this.openToken !== undefined && sameSecret(this.openToken, token);
  }

  /**
   * The session's device when it is open, authenticated, and `token` is the token it authenticated
   * with (compared in constant time); undefined otherwise — the caller then checks the token as for
   * any request, so that a wrong token is answered exactly as before.
   */
  deviceBearing(token: string): number | undefined {
    const own = this.listener?.deviceId;
    if (this.closed || own === undefined || this.openToken === undefined) return undefined;
    return sameSecret(this.openToken, token) ? own : undefined;
  }

  /** Hands client frames to the session in order, as a WebSocket hands text frames; stops if the session closes. */
  receive(frames: readonly string[]): void {
    for (const text of frames) {
      if (this.closed || !this.listener) return;
      this.guard('handling a stream frame', (listener) => listener.onMessage(text));
    }
  }

  send(text: string): SendStatus {
    if (this.closed) return 'dropped';
    this.buffer.push(text);
    this.sink?.flush();
    return this.buffer.unwrittenBytes > 0 ? 'buffered' : 'sent';
  }

  bufferedAmount(): number {
    return this.closed ? 0 : this.buffer.unwrittenBytes + (this.sink?.queued() ?? 0);
  }

  subscribe(topic: string): void {
    if (this.closed) return;
    this.topics.add(topic);
    this.deps.topics.add(topic, this);
  }

  unsubscribe(topic: string): void {
    this.topics.delete(topic);
    this.deps.topics.remove(topic, this);
  }

  gather(work: () => void): void {
    work();
  }

  /** The session ends: the live response gets the last frames and the close event; without one, they wait a while for the client. */
  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.leaveTopics();
    this.closeText = closeEvent(code, reason);
    if (this.sink) {
      this.sink.end(this.closeText);
      this.deps.forget(this);
    } else {
      setTimeout(() => this.deps.forget(this), this.deps.lingerMs).unref();
    }
    this.guard('closing a stream session', (listener) => listener.onClose(code, reason));
  }

  /**
   * Ends the session as a connection lost without a close (1006): its client could not resume (its
   * frames are gone). The live response, if any, ends without a close event.
   */
  lose(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.leaveTopics();
    const sink = this.sink;
    this.sink = undefined;
    sink?.end();
    this.deps.forget(this);
    this.guard('closing a stream session', (listener) => listener.onClose(1006, reason));
  }

  /**
   * Makes `sink` the live response from the client's `afterId` on (checked by the caller); an older
   * one ends without a close event. On a session that has closed, the sink gets what is left and
   * the close event.
   */
  attach(sink: Sink, afterId: number, acknowledged: boolean): void {
    const previous = this.sink;
    this.sink = sink;
    previous?.end();
    this.buffer.rewind(afterId, acknowledged);
    if (this.closed) {
      sink.end(this.closeText);
      this.deps.forget(this);
      return;
    }
    sink.flush();
  }

  detach(sink: Sink): void {
    if (this.sink === sink) this.sink = undefined;
  }

  drained(): void {
    if (!this.closed) this.guard('draining a stream session', (listener) => listener.onDrain());
  }

  private leaveTopics(): void {
    for (const topic of this.topics) this.deps.topics.remove(topic, this);
    this.topics.clear();
  }

  /** A listener that throws gets its session closed with 1011 (as a WebSocket's), and the process carries on. */
  private guard(where: string, work: (listener: StreamListener) => void): void {
    const listener = this.listener;
    if (!listener) return;
    try {
      work(listener);
    } catch (error) {
      this.deps.onError(error, where);
      this.close(1011, 'internal server error');
    }
  }
}

/** Equal strings, compared in time that does not depend on where they differ (a token's length is no secret: all have the same). */
function sameSecret(expected: string, given: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}
