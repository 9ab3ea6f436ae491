import type { SocketLike } from './socket.js';
import { SseParser } from './sse-parser.js';

/** `stream`: one long response carries the frames down; `poll`: one short response per batch of frames (for proxies that buffer). */
export type StreamMode = 'stream' | 'poll';

export type FetchFunction = (input: string, init: RequestInit) => Promise<Response>;

export interface StreamSocketOptions {
  /** The server's HTTP base URL. */
  readonly server: string;
  readonly mode: StreamMode;
  /** The platform's `fetch` by default. */
  readonly fetch?: FetchFunction;
  /** Most frames one POST carries (the server's `stream.max_batch_frames` is 100 by default). */
  readonly maxBatchFrames?: number;
}

const OPEN = 1;
const CLOSED = 3;
/** A resume or poll that could not reach the server is tried again after this (doubling up to the max) until the connection gives up on its silence. */
const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 2000;

/**
 * The WebSocket the SDK's Connection expects, made of HTTP requests to
 * `/v1/stream` (docs/protocol.md, "The stream transport"), for networks where
 * WebSockets do not get through. The first frame the Connection writes (auth)
 * becomes the body of the POST that opens the session; later frames go up in
 * POSTs, those of one turn together, one POST at a time so they arrive in
 * order; frames come down as server-sent events. A cut response is resumed
 * with `Last-Event-ID` without the Connection noticing; when the server can no
 * longer resume (409 `resume_failed`, 404 `stream_not_found`) the socket
 * closes with 1006, so the client reconnects and catches up as after any lost
 * connection.
 */
export class StreamSocket implements SocketLike {
  readyState = 0;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { readonly data: unknown }) => void) | null = null;
  onclose: ((event: { readonly code: number; readonly reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  /**
   * Why the open failed before the server answered it: `unreachable` (no
   * connection to the server) or `refused` (an HTTP error: no stream transport
   * there). The transport policy tells these from a stream a proxy holds back.
   */
  failure: 'unreachable' | 'refused' | undefined;
  private readonly endpoint: string;
  private readonly fetch: FetchFunction;
  private maxBatch: number;
  private readonly abort = new AbortController();
  private readonly queue: string[] = [];
  private sid: string | undefined;
  private token = '';
  private opening = false;
  private posting = false;
  private flushQueued = false;
  private closed = false;
  /** The server was told to end the session (release). */
  private released = false;
  /** The id of the last frame received: what a resume or the next poll asks to continue after. */
  private lastId = 0;
  private retryMs = RETRY_FIRST_MS;

  constructor(private readonly options: StreamSocketOptions) {
    this.endpoint = `${options.server.replace(/\/+$/, '')}/v1/stream`;
    this.fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.maxBatch = options.maxBatchFrames ?? 50;
    // Nothing to open before the first frame: the session is opened by the POST that carries it (auth).
    queueMicrotask(() => {
      if (this.closed) return;
      this.readyState = OPEN;
      this.onopen?.({});
    });
  }

  send(data: string): void {
    if (this.closed) return;
    this.queue.push(data);
    if (this.flushQueued) return;
    this.flushQueued = true;
    // The frames of one turn go up in one POST.
    queueMicrotask(() => {
      this.flushQueued = false;
      this.flush();
    });
  }

  close(code = 1000, reason = ''): void {
    if (this.closed) return;
    this.stop();
    this.release();
    // As a WebSocket's: the close event comes after close() returned.
    queueMicrotask(() => this.onclose?.({ code, reason }));
  }

  private flush(): void {
    if (this.closed || this.queue.length === 0 || this.posting || this.opening) return;
    if (this.sid === undefined) {
      this.opening = true;
      void this.open(this.queue.splice(0, this.maxBatch));
      return;
    }
    this.posting = true;
    void this.post(this.sid, this.queue.splice(0, this.maxBatch));
  }

  private async open(frames: string[]): Promise<void> {
    try {
      this.token = String((JSON.parse(frames[0] as string) as { token?: unknown }).token ?? '');
    } catch {
      // Not the auth frame: the server refuses the open and says why.
    }
    let response: Response;
    try {
      response = await this.fetch(this.options.mode === 'poll' ? `${this.endpoint}?mode=poll` : this.endpoint, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: `[${frames.join(',')}]`,
        signal: this.abort.signal,
      });
    } catch {
      if (this.closed) return;
      this.failure = 'unreachable';
      return this.lost();
    }
    const sid = response.headers.get('Chatd-Stream');
    if (this.closed) {
      // Closed while the open was on its way: the session it opened is ended at once.
      if (response.ok && sid) this.sid = sid;
      this.release();
      return discard(response);
    }
    if (!response.ok || !sid) {
      this.failure = 'refused';
      void discard(response);
      return this.lost();
    }
    this.sid = sid;
    this.opening = false;
    this.flush();
    await this.down(response);
  }

  private async post(sid: string, frames: string[]): Promise<void> {
    let response: Response;
    try {
      response = await this.fetch(`${this.endpoint}/${encodeURIComponent(sid)}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${this.token}` },
        body: `[${frames.join(',')}]`,
        signal: this.abort.signal,
      });
    } catch {
      // Whether the server got these frames is unknown: like frames on a dead WebSocket, they are the Connection's to send again.
      return this.lost(true);
    }
    void discard(response);
    if (this.closed) return;
    if (response.status === 413 && frames.length > 1) {
      // More frames than the server's stream.max_batch_frames (nothing of the batch was handled): smaller batches from now on.
      this.maxBatch = Math.max(1, Math.floor(frames.length / 2));
      this.queue.unshift(...frames);
      this.posting = false;
      return this.flush();
    }
    // 404: the session ended (its close event is on its way, or was lost with a cut). Others are a bug or a broken
    // proxy, and the session may still be there.
    if (!response.ok) return this.lost(response.status !== 404);
    this.posting = false;
    this.flush();
  }

  /** Reads responses down, one after the other, until the session closes: a cut stream resumes, a poll is followed by the next. */
  private async down(first: Response): Promise<void> {
    let response: Response | undefined = first;
    while (!this.closed) {
      if (response) {
        await this.read(response);
        if (this.closed) return;
      }
      response = await this.next();
      if (response === undefined) {
        await new Promise((resolve) => setTimeout(resolve, this.retryMs));
        this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
      }
    }
  }

  /** The next response down (a resume, or the next poll); undefined when it could not be had now (try again). */
  private async next(): Promise<Response | undefined> {
    const sid = this.sid as string;
    let response: Response;
    try {
      response = await this.fetch(`${this.endpoint}/${encodeURIComponent(sid)}${this.options.mode === 'poll' ? '?mode=poll' : ''}`, {
        headers: { Authorization: `Bearer ${this.token}`, 'Last-Event-ID': String(this.lastId) },
        signal: this.abort.signal,
      });
    } catch {
      return undefined;
    }
    if (this.closed) {
      void discard(response);
      return undefined;
    }
    if (response.ok) {
      this.retryMs = RETRY_FIRST_MS;
      return response;
    }
    void discard(response);
    // A server or proxy in trouble: try again. 409 resume_failed, 404 stream_not_found (and anything else):
    // this session is over, and a new one catches up on what it missed.
    if (response.status >= 500) return undefined;
    this.lost(response.status !== 404 && response.status !== 409);
    return undefined;
  }

  private async read(response: Response): Promise<void> {
    if (!response.body) return;
    const parser = new SseParser((event) => {
      if (this.closed) return;
      if (event.event === 'close') return this.closedByServer(event.data);
      if (event.event !== 'message') return;
      const id = Number(event.id);
      if (Number.isSafeInteger(id)) {
        // Each frame once: a frame at or before the last one seen is a repeat.
        if (id <= this.lastId) return;
        this.lastId = id;
      }
      this.onmessage?.({ data: event.data });
    });
    const reader = response.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done || this.closed) break;
        parser.push(value);
      }
    } catch {
      // Cut: the caller resumes.
    } finally {
      parser.end();
      reader.cancel().catch(() => undefined);
    }
  }

  private closedByServer(data: string): void {
    let code = 1006;
    let reason = '';
    try {
      const close = JSON.parse(data) as { code?: unknown; reason?: unknown };
      if (typeof close.code === 'number') code = close.code;
      if (typeof close.reason === 'string') reason = close.reason;
    } catch {
      // A close without a readable code: taken as a lost connection.
    }
    this.end(code, reason);
  }

  /** `alive`: the server may still hold the session (it did not say it ended), so it is told to end it. */
  private lost(alive = false): void {
    if (this.closed) return;
    this.end(1006, 'connection lost');
    if (alive) this.release();
  }

  private end(code: number, reason: string): void {
    if (this.closed) return;
    this.stop();
    this.onclose?.({ code, reason });
  }

  /**
   * Tells the server this session is over (DELETE, the client's close), so it ends it now (its
   * unacknowledged messages go back to the inbox) rather than at its heartbeat deadline, holding one
   * of the device's connections and taking frames meanwhile. Best effort and not awaited: a client
   * that cannot reach the server leaves it to that deadline. A session whose open was not answered
   * yet has no sid to name: it is left to the deadline too.
   */
  private release(): void {
    const sid = this.sid;
    if (sid === undefined || this.released) return;
    this.released = true;
    this.fetch(`${this.endpoint}/${encodeURIComponent(sid)}`, {
      method: 'DELETE',
      // The token in a header, never in the URL (URLs end up in logs).
      headers: { Authorization: `Bearer ${this.token}` },
      // Outlives the page that closes the client as it unloads (logout, then away).
      keepalive: true,
    }).then(discard, () => undefined);
  }

  private stop(): void {
    this.closed = true;
    this.readyState = CLOSED;
    this.queue.length = 0;
    this.abort.abort();
  }
}

/** Lets go of a response not read, so its connection can be reused. */
async function discard(response: Response): Promise<void> {
  try {
    await response.body?.cancel();
  } catch {
    // Already gone.
  }
}
