import { randomBytes } from 'node:crypto';
import { ChatError, CloseCodes } from '../../errors.js';
import type { Connection } from '../../transport/types.js';
import { EVENT_STREAM_HEADERS, PollSink, type Sink, StreamSink } from './sinks.js';
import { StreamConnection, type StreamListener } from './stream-connection.js';
import { StreamTopics } from './topics.js';
import { StreamTurns } from './turns.js';

/** As the /v1/stream routes' StreamEndpoint has them (declared there; the session implements it without importing the routes). */
export type StreamMode = 'stream' | 'poll';

export interface StreamPeer {
  readonly remoteAddress: string;
  readonly forwardedFor: string | undefined;
}

export interface StreamSettings {
  readonly resumeFrames: number;
  readonly keepaliveMs: number;
  readonly pollTimeoutMs: number;
  /** websocket.max_buffered_bytes: also the bound on the bytes the resume buffer keeps. */
  readonly maxBufferedBytes: number;
}

/**
 * This node's stream sessions by sid, and the endpoint the /v1/stream routes call. A sid is
 * `<node>.<128 random bits, base64url>`: a load balancer routes by its prefix; a sid of another
 * node is simply not found here.
 */
export class StreamSessions {
  private readonly byId = new Map<string, StreamConnection>();
  readonly topics = new StreamTopics();
  private readonly turns: StreamTurns;

  constructor(
    private readonly node: string,
    /** Makes the session for a new connection (the same Session class as a WebSocket's). */
    private readonly accept: (connection: Connection) => StreamListener,
    private readonly settings: StreamSettings,
    private readonly onError: (error: unknown, where: string) => void,
  ) {
    this.turns = new StreamTurns(settings.keepaliveMs);
  }

  /** Open stream sessions, the ended ones still waiting to tell their client included. */
  get size(): number {
    return this.byId.size;
  }

  publish(topic: string, text: string): void {
    this.topics.publish(topic, text);
  }

  open(frames: readonly string[], token: string | undefined, mode: StreamMode, peer: StreamPeer): Promise<Response> {
    const sid = `${this.node}.${randomBytes(16).toString('base64url')}`;
    const connection = new StreamConnection(sid, peer.remoteAddress, peer.forwardedFor, token, {
      topics: this.topics,
      resumeFrames: this.settings.resumeFrames,
      maxBufferedBytes: this.settings.maxBufferedBytes,
      // The longest a client may take to come back: a poller between polls, a stream client that notices its stream went quiet.
      lingerMs: Math.max(this.settings.pollTimeoutMs, this.settings.keepaliveMs),
      forget: (ended) => {
        if (this.byId.get(ended.sid) === ended) this.byId.delete(ended.sid);
      },
      onError: this.onError,
    });
    this.byId.set(sid, connection);
    // The response first, so that what the session says at once (a refused token) goes down it.
    const { sink, response } = this.sinkFor(connection, mode);
    connection.attach(sink, 0, true);
    let listener: StreamListener;
    try {
      listener = this.accept(connection);
    } catch (error) {
      this.onError(error, 'opening a stream session');
      connection.close(1011, 'internal server error');
      return response;
    }
    connection.listen(listener);
    connection.receive(frames);
    return response;
  }

  /** The device of open session `sid` when `token` is the one it authenticated with; undefined when the token must be checked as usual. */
  deviceBearing(sid: string, token: string): number | undefined {
    return this.byId.get(sid)?.deviceBearing(token);
  }

  post(sid: string, deviceId: number, token: string, frames: readonly string[]): void {
    this.find(sid, deviceId, token).receive(frames);
  }

  /**
   * The client closes its session (DELETE), as a WebSocket client's close frame with 1000 would: the
   * Session's onClose hands what it had live and unacknowledged over to the inbox and frees the
   * device's connection slot; an open response gets the close event and ends.
   */
  end(sid: string, deviceId: number, token: string): void {
    this.find(sid, deviceId, token).close(CloseCodes.normal.code, 'the client closed the session');
  }

  resume(sid: string, deviceId: number, token: string, lastEventId: number, mode: StreamMode): Promise<Response> {
    const connection = this.find(sid, deviceId, token, true);
    const point = connection.buffer.check(lastEventId);
    if (!point.ok && point.problem === 'future') {
      throw new ChatError('bad_request', `Last-Event-ID ${lastEventId} is after the last frame sent, ${point.lastId}`);
    }
    if (!point.ok) {
      // Durability never depended on these frames: the session ends as a lost connection (its live
      // messages go back to the inbox), and the client's next session drains the inbox and syncs.
      connection.lose('resume_failed');
      throw new ChatError('resume_failed', `the frames after ${lastEventId} are no longer kept (the oldest is ${point.oldestId}); open a new session and sync`);
    }
    const { sink, response } = this.sinkFor(connection, mode);
    connection.attach(sink, lastEventId, mode === 'poll');
    return response;
  }

  private sinkFor(connection: StreamConnection, mode: StreamMode): { readonly sink: Sink; readonly response: Promise<Response> } {
    const headers = { ...EVENT_STREAM_HEADERS, 'chatd-stream': connection.sid };
    if (mode === 'poll') {
      const sink = new PollSink(connection, this.settings.pollTimeoutMs, headers);
      return { sink, response: sink.response };
    }
    const sink = new StreamSink(connection, this.turns);
    return { sink, response: Promise.resolve(new Response(sink.body, { status: 200, headers })) };
  }

  /** The session `sid` if it is this device's and still open (a resume may also reach one that ended, for its close event). */
  private find(sid: string, deviceId: number, token: string, endedToo = false): StreamConnection {
    const connection = this.byId.get(sid);
    if (!connection || (connection.isClosed && !endedToo) || !connection.belongsTo(deviceId, token)) {
      throw new ChatError('stream_not_found', `no open stream session ${sid} for this device on this server; open a new one with POST /v1/stream`);
    }
    return connection;
  }
}
