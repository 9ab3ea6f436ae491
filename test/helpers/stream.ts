/**
 * A small /v1/stream client for tests (docs/protocol.md, "The stream transport"): opens a session with
 * a POST, reads the event stream (or long-polls), sends frames up in POST batches, and can cut its
 * stream and resume with Last-Event-ID. Frames queue as TestSocket's do (test/helpers/ws.ts).
 */

type Frame = any;

export interface CloseEvent {
  readonly code: number;
  readonly reason: string;
  readonly message: string;
}

/** One parsed event-stream event; comments count in `comments`. */
interface SseEvent {
  readonly id: number | undefined;
  readonly event: string;
  readonly data: string;
}

/** Parses an event stream given in chunks split anywhere (mid-line, mid-character). */
export class SseParser {
  private buffer = '';
  private readonly decoder = new TextDecoder();
  comments = 0;

  constructor(private readonly onEvent: (event: SseEvent) => void) {}

  push(chunk: Uint8Array): void {
    this.buffer += this.decoder.decode(chunk, { stream: true });
    for (let end = this.buffer.indexOf('\n\n'); end >= 0; end = this.buffer.indexOf('\n\n')) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      let id: number | undefined;
      let event = 'message';
      const data: string[] = [];
      let fields = 0;
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) {
          this.comments++;
          continue;
        }
        const colon = line.indexOf(':');
        const name = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        fields++;
        if (name === 'id') id = Number(value);
        else if (name === 'event') event = value;
        else if (name === 'data') data.push(value);
      }
      if (fields > 0) this.onEvent({ id, event, data: data.join('\n') });
    }
  }
}

export class StreamClient {
  /** Every frame received, in arrival order, with its event id. */
  readonly arrivals: Array<{ readonly id: number; readonly frame: Frame }> = [];
  /** The id of the last frame received (what a resume sends as Last-Event-ID). */
  lastId = 0;
  /** Set by the close event. */
  closeEvent: CloseEvent | undefined;
  /** Keepalive and other comment lines seen over every response. */
  comments = 0;
  /** Responses that ended (stream mode: cut or ended by the server). */
  ended = 0;
  private readonly queue: Frame[] = [];
  private readonly waiters: Array<{ match: (frame: Frame) => boolean; resolve: (frame: Frame) => void }> = [];
  private readonly pending = new Map<string, (frame: Frame) => void>();
  private readonly watchers = new Set<() => void>();
  private abort: AbortController | undefined;
  private counter = 0;
  private polling = false;

  private constructor(
    readonly baseUrl: string,
    readonly token: string,
    readonly sid: string,
    readonly mode: 'stream' | 'poll',
  ) {}

  /** The raw open: POST /v1/stream with `frames` (the auth frame is not added). */
  static openRaw(baseUrl: string, body: unknown, mode: 'stream' | 'poll' = 'stream', signal?: AbortSignal): Promise<Response> {
    return fetch(`${baseUrl}/v1/stream${mode === 'poll' ? '?mode=poll' : ''}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
      ...(signal ? { signal } : {}),
    });
  }

  /** Opens a session with the auth frame (id "auth") and `more` frames; reads its frames from then on. */
  static async open(baseUrl: string, token: string, options: { mode?: 'stream' | 'poll'; more?: Frame[] } = {}): Promise<StreamClient> {
    const mode = options.mode ?? 'stream';
    const abort = new AbortController();
    const response = await StreamClient.openRaw(baseUrl, [{ type: 'auth', id: 'auth', token }, ...(options.more ?? [])], mode, abort.signal);
    if (response.status !== 200) throw new Error(`open: ${response.status} ${await response.text()}`);
    const sid = response.headers.get('chatd-stream');
    if (!sid) throw new Error('open: no Chatd-Stream header');
    const client = new StreamClient(baseUrl, token, sid, mode);
    client.abort = abort;
    if (mode === 'stream') void client.read(response);
    else {
      client.polling = true;
      void client.read(response).then(() => client.pollLoop());
    }
    return client;
  }

  /** Opens and waits for the welcome and the inbox (its message events), as connectAuthenticated does. */
  static async connect(baseUrl: string, token: string, mode: 'stream' | 'poll' = 'stream'): Promise<{ client: StreamClient; welcome: Frame; inbox: Frame[] }> {
    const client = await StreamClient.open(baseUrl, token, { mode });
    const welcome = await client.next();
    if (welcome.type !== 'welcome') throw new Error(`auth failed: ${JSON.stringify(welcome)}`);
    const inbox: Frame[] = [];
    for (;;) {
      const frame = await client.next();
      if (frame.type === 'inbox_done') return { client, welcome, inbox };
      if (frame.type !== 'message') throw new Error(`expected the inbox, got ${JSON.stringify(frame)}`);
      inbox.push(frame);
    }
  }

  /** POSTs a batch (raw: any body) to this session, or to `sid`; the response status and body text. */
  async post(body: unknown, options: { sid?: string; token?: string | null } = {}): Promise<{ status: number; text: string }> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    const token = options.token === undefined ? this.token : options.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    const response = await fetch(`${this.baseUrl}/v1/stream/${encodeURIComponent(options.sid ?? this.sid)}`, {
      method: 'POST',
      headers,
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: response.status, text: await response.text() };
  }

  /** DELETE /v1/stream/<sid>: the client's close of this session (or of `sid`); the response status and body text. */
  async end(options: { sid?: string; token?: string | null } = {}): Promise<{ status: number; text: string }> {
    const token = options.token === undefined ? this.token : options.token;
    const response = await fetch(`${this.baseUrl}/v1/stream/${encodeURIComponent(options.sid ?? this.sid)}`, {
      method: 'DELETE',
      headers: token === null ? {} : { authorization: `Bearer ${token}` },
    });
    return { status: response.status, text: await response.text() };
  }

  send(frame: Frame): Promise<void> {
    return this.post([frame]).then(({ status, text }) => {
      if (status !== 204) throw new Error(`POST: ${status} ${text}`);
    });
  }

  /** Sends a request (an id is added) and resolves with the frame that carries its id. */
  request(frame: Record<string, unknown>): Promise<Frame> {
    const id = `s${++this.counter}`;
    const reply = new Promise<Frame>((resolve) => this.pending.set(id, resolve));
    void this.send({ ...frame, id });
    return reply;
  }

  async expect(frame: Record<string, unknown>, type: string): Promise<Frame> {
    const reply = await this.request(frame);
    if (reply.type !== type) throw new Error(`expected ${type} for ${JSON.stringify(frame)}, got ${JSON.stringify(reply)}`);
    return reply;
  }

  next(): Promise<Frame> {
    return this.nextEvent(() => true);
  }

  nextEvent(match: string | ((frame: Frame) => boolean)): Promise<Frame> {
    const test = typeof match === 'string' ? (frame: Frame) => frame.type === match : match;
    const index = this.queue.findIndex(test);
    if (index >= 0) return Promise.resolve(this.queue.splice(index, 1)[0]);
    return new Promise((resolve) => this.waiters.push({ match: test, resolve }));
  }

  drain(match: string | ((frame: Frame) => boolean)): Frame[] {
    const test = typeof match === 'string' ? (frame: Frame) => frame.type === match : match;
    const taken = this.queue.filter(test);
    for (const frame of taken) this.queue.splice(this.queue.indexOf(frame), 1);
    return taken;
  }

  /** Resolves once `check` holds (checked after every event the client sees). */
  until<T>(check: () => T | undefined, what: string, timeoutMs = 20_000): Promise<T> {
    const now = check();
    if (now !== undefined) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.watchers.delete(watch);
        reject(new Error(`timed out waiting for ${what}`));
      }, timeoutMs);
      const watch = (): void => {
        const value = check();
        if (value === undefined) return;
        clearTimeout(timer);
        this.watchers.delete(watch);
        resolve(value);
      };
      this.watchers.add(watch);
    });
  }

  /** Waits for the close event. */
  closed(): Promise<CloseEvent> {
    return this.until(() => this.closeEvent, 'the close event');
  }

  /** Cuts the current response (and stops polling): the session stays on the server. */
  cut(): void {
    this.polling = false;
    this.abort?.abort();
    this.abort = undefined;
  }

  /** The raw resume: GET /v1/stream/<sid> with Last-Event-ID. */
  resumeRaw(lastEventId: string | number | null, options: { mode?: 'stream' | 'poll'; token?: string | null; sid?: string; signal?: AbortSignal } = {}): Promise<Response> {
    const headers: Record<string, string> = {};
    const token = options.token === undefined ? this.token : options.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    if (lastEventId !== null) headers['last-event-id'] = String(lastEventId);
    const mode = options.mode ?? this.mode;
    return fetch(`${this.baseUrl}/v1/stream/${encodeURIComponent(options.sid ?? this.sid)}${mode === 'poll' ? '?mode=poll' : ''}`, {
      headers,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  /** Resumes in stream mode after the last frame received; the response (200 or an error) is returned, and a 200 is read from then on. */
  async resume(lastEventId = this.lastId): Promise<Response> {
    this.cut();
    const abort = new AbortController();
    const response = await this.resumeRaw(lastEventId, { mode: 'stream', signal: abort.signal });
    if (response.status === 200) {
      this.abort = abort;
      void this.read(response);
    }
    return response;
  }

  close(): void {
    this.cut();
  }

  private async pollLoop(): Promise<void> {
    while (this.polling && !this.closeEvent) {
      const abort = new AbortController();
      this.abort = abort;
      let response: Response;
      try {
        response = await this.resumeRaw(this.lastId, { mode: 'poll', signal: abort.signal });
      } catch {
        return;
      }
      if (response.status !== 200) {
        this.polling = false;
        return;
      }
      await this.read(response);
    }
  }

  private async read(response: Response): Promise<void> {
    const parser = new SseParser((event) => this.onEvent(event));
    try {
      for await (const chunk of response.body as ReadableStream<Uint8Array>) {
        parser.push(chunk);
        this.comments += parser.comments;
        parser.comments = 0;
        this.notify();
      }
    } catch {
      // Cut.
    }
    this.ended++;
    this.notify();
  }

  private onEvent(event: SseEvent): void {
    if (event.event === 'close') {
      this.closeEvent = JSON.parse(event.data) as CloseEvent;
      return;
    }
    const frame = JSON.parse(event.data) as Frame;
    const id = event.id ?? 0;
    this.arrivals.push({ id, frame });
    if (id > this.lastId) this.lastId = id;
    const reply = typeof frame.id === 'string' ? this.pending.get(frame.id) : undefined;
    if (reply) {
      this.pending.delete(frame.id);
      reply(frame);
      return;
    }
    const index = this.waiters.findIndex((waiter) => waiter.match(frame));
    if (index >= 0) {
      const [waiter] = this.waiters.splice(index, 1);
      waiter?.resolve(frame);
    } else this.queue.push(frame);
  }

  private notify(): void {
    for (const watch of [...this.watchers]) watch();
  }
}
