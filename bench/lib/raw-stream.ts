import { Agent, type IncomingMessage, request } from 'node:http';

/**
 * A lean /v1/stream client for the load generator (docs/protocol.md, "The stream
 * transport"): the open POST carries the auth frame; frames come down as an event
 * stream (stream mode: one response held open) or as answers to long polls (poll
 * mode: GET ?mode=poll with Last-Event-ID, again at once); frames go up in POST
 * batches, one POST in flight per device, as the SDK does: what is sent while a
 * POST is out waits for its 204 and goes in the next batch (in order).
 */
/** This thread's POSTs and the frames they carried (how well the batching works). */
export const upCounts = { posts: 0, frames: 0 };

export class RawStream {
  /** A frame's JSON, as it came in the event's data line. */
  onFrame: (text: string) => void = () => {};
  /** The session ended (`event: close`), or a request failed. */
  onClose: (why: string) => void = () => {};
  private queued: string[] = [];
  private posting = false;
  private lastId = 0;
  private closed = false;
  private down: ReturnType<typeof request> | undefined;

  private constructor(
    private readonly base: URL,
    private readonly token: string,
    private readonly mode: 'stream' | 'poll',
    private readonly sid: string,
    private readonly agents: StreamAgents,
    private readonly maxBatch: number,
  ) {}

  /**
   * Opens a session: POST /v1/stream with the auth frame. `onFrame` is set before any frame is
   * read, so the caller sees the welcome and the inbox (it passes its handler in `handlers`).
   */
  static open(
    baseUrl: string,
    token: string,
    mode: 'stream' | 'poll',
    agents: StreamAgents,
    handlers: { onFrame: (text: string) => void; onClose: (why: string) => void },
    maxBatch = 100,
  ): Promise<RawStream> {
    const base = new URL(baseUrl);
    return new Promise((resolve, reject) => {
      const body = `[{"type":"auth","id":"a","token":"${token}"}]`;
      const req = request(
        {
          host: base.hostname,
          port: base.port,
          method: 'POST',
          path: `/v1/stream${mode === 'poll' ? '?mode=poll' : ''}`,
          agent: agents.down,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (response) => {
          const sid = response.headers['chatd-stream'];
          if (response.statusCode !== 200 || typeof sid !== 'string') {
            response.resume();
            reject(new Error(`stream open refused: HTTP ${response.statusCode}`));
            return;
          }
          const stream = new RawStream(base, token, mode, sid, agents, maxBatch);
          stream.onFrame = handlers.onFrame;
          stream.onClose = handlers.onClose;
          stream.down = req;
          resolve(stream);
          stream.read(response);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  /** Queues a client frame (JSON text); it goes up in the next batch. */
  send(frame: string): void {
    if (this.closed) return;
    this.queued.push(frame);
    if (!this.posting) {
      this.posting = true;
      queueMicrotask(() => this.flush());
    }
  }

  /** Drops the session's responses (the server closes it when its heartbeat deadline passes). */
  destroy(): void {
    this.closed = true;
    this.down?.destroy();
  }

  private flush(): void {
    if (this.closed || this.queued.length === 0) {
      this.posting = false;
      return;
    }
    const batch = this.queued.length <= this.maxBatch ? this.queued : this.queued.slice(0, this.maxBatch);
    this.queued = batch === this.queued ? [] : this.queued.slice(this.maxBatch);
    const body = `[${batch.join(',')}]`;
    upCounts.posts++;
    upCounts.frames += batch.length;
    const req = request(
      {
        host: this.base.hostname,
        port: this.base.port,
        method: 'POST',
        path: `/v1/stream/${this.sid}`,
        agent: this.agents.up,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${this.token}` },
      },
      (response) => {
        response.resume();
        response.on('end', () => {
          if (response.statusCode !== 204) return this.fail(`POST answered ${response.statusCode}`);
          this.flush();
        });
      },
    );
    req.on('error', (error) => this.fail(`POST failed: ${error.message}`));
    req.end(body);
  }

  private fail(why: string): void {
    if (this.closed) return;
    this.closed = true;
    this.down?.destroy();
    this.onClose(why);
  }

  /** Reads an event-stream body: `id: n`, `data: …`, blank line; comments (keepalives) skipped. */
  private read(response: IncomingMessage): void {
    let buffer = '';
    let ended = false;
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      buffer += chunk;
      let at = 0;
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n', at)) {
        const block = buffer.slice(at, end);
        at = end + 2;
        if (block.startsWith(':')) continue;
        const data = block.indexOf('data: ');
        if (data < 0) continue;
        if (block.startsWith('event: close')) {
          ended = true;
          this.fail(`closed by the server: ${block.slice(data + 6)}`);
          continue;
        }
        if (block.startsWith('id: ')) this.lastId = Number(block.slice(4, block.indexOf('\n')));
        this.onFrame(block.slice(data + 6));
      }
      buffer = at === 0 ? buffer : buffer.slice(at);
    });
    response.on('end', () => {
      if (ended || this.closed) return;
      if (this.mode === 'poll') this.poll();
      else this.fail('the event stream ended');
    });
    response.on('error', () => {});
  }

  private poll(): void {
    const req = request(
      {
        host: this.base.hostname,
        port: this.base.port,
        method: 'GET',
        path: `/v1/stream/${this.sid}?mode=poll`,
        agent: this.agents.down,
        headers: { authorization: `Bearer ${this.token}`, 'last-event-id': String(this.lastId) },
      },
      (response) => {
        if (response.statusCode !== 200) {
          response.resume();
          return this.fail(`poll answered ${response.statusCode}`);
        }
        this.read(response);
      },
    );
    this.down = req;
    req.on('error', (error) => this.fail(`poll failed: ${error.message}`));
    req.end();
  }
}

/**
 * The connections a generator thread's stream clients share. `down`: the event streams and
 * polls, one socket each while it is open (kept alive and reused by the next poll). `up`: the
 * POSTs, kept alive.
 */
export interface StreamAgents {
  readonly down: Agent;
  readonly up: Agent;
}

export function streamAgents(upSockets: number): StreamAgents {
  return {
    down: new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY }),
    up: new Agent({ keepAlive: true, maxSockets: upSockets }),
  };
}
