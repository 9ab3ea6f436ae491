import { createHash } from 'node:crypto';
import WebSocket from 'ws';
import type { Connection, ConnectionListener, HttpHandler, TransportOptions, TransportServer } from '../../src/transport/types.js';
import { Waiters } from '../helpers/waiters.js';

/**
 * A transport under test, in process: started on port 0 with a listener that
 * records what the transport tells it and an HTTP handler that echoes what it
 * was given, and real sockets (the `ws` package, fetch) as the peers. Every wait
 * is for an event, with a deadline so a regression fails with what was awaited.
 */

export type MakeTransport = (options: TransportOptions) => TransportServer;

export const WS_PATH = '/v1/ws';
export const MAX_BODY_BYTES = 1024;
export const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
const DEADLINE_MS = 5_000;

export type ServerEvent =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'binary' }
  | { readonly kind: 'drain' }
  | { readonly kind: 'close'; readonly code: number; readonly reason: string };

/** What a request looked like to the HTTP handler. */
export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly header: string | null;
  readonly body: string;
  readonly remoteAddress: string;
}

/** What the streaming upload handler has read so far, and how its reading ended. */
export interface StreamedUpload {
  bytes: number;
  chunks: number;
  /** 'whole' once the body ended; the error's name when a read rejected. */
  outcome: string | undefined;
  /** SHA-256 (hex) of what was read, once whole. */
  sha256?: string;
}

/** The bytes the streamed routes send and the tests expect: 64 KiB chunks, each told apart by its index. */
export const CHUNK_BYTES = 64 * 1024;
const PATTERN = Buffer.from(Array.from({ length: CHUNK_BYTES }, (_, i) => (i * 131 + 7) % 251));

export function patternChunk(index: number, size = CHUNK_BYTES): Buffer {
  const chunk = Buffer.from(PATTERN.subarray(0, size));
  chunk.writeUInt32BE(index >>> 0, 0);
  return chunk;
}

/** SHA-256 (hex) of the first `total` bytes of the pattern. */
export function patternSha256(total: number): string {
  const hash = createHash('sha256');
  for (let index = 0; index * CHUNK_BYTES < total; index++) hash.update(patternChunk(index, Math.min(CHUNK_BYTES, total - index * CHUNK_BYTES)));
  return hash.digest('hex');
}

/** One accepted connection and what its listener was told, in order. */
export class Accepted implements ConnectionListener {
  readonly events: ServerEvent[] = [];

  constructor(
    readonly connection: Connection,
    private readonly waiters: Waiters,
  ) {}

  onMessage(text: string): void {
    this.record({ kind: 'text', text });
  }
  onBinary(): void {
    this.record({ kind: 'binary' });
  }
  onDrain(): void {
    this.record({ kind: 'drain' });
  }
  onClose(code: number, reason: string): void {
    this.record({ kind: 'close', code, reason });
  }

  of<K extends ServerEvent['kind']>(kind: K): Array<Extract<ServerEvent, { kind: K }>> {
    return this.events.filter((event): event is Extract<ServerEvent, { kind: K }> => event.kind === kind);
  }

  /** Resolves once `count` events of `kind` have been recorded. */
  until<K extends ServerEvent['kind']>(kind: K, count = 1): Promise<Array<Extract<ServerEvent, { kind: K }>>> {
    return this.waiters.until(
      () => (this.of(kind).length >= count ? this.of(kind) : undefined),
      DEADLINE_MS,
      () => `the listener was told ${count} × ${kind}; it has ${JSON.stringify(this.events)}`,
    );
  }

  private record(event: ServerEvent): void {
    this.events.push(event);
    this.waiters.notify();
  }
}

/** A client socket and what it received, in order. */
export class Client {
  readonly texts: string[] = [];
  /** Bytes received in all frames, text or binary. */
  bytes = 0;
  closed: { readonly code: number; readonly reason: string } | undefined;

  constructor(
    readonly ws: WebSocket,
    readonly accepted: Accepted,
    private readonly waiters: Waiters,
  ) {
    ws.on('message', (data: Buffer, isBinary) => {
      this.bytes += data.byteLength;
      if (!isBinary) this.texts.push(data.toString('utf8'));
      waiters.notify();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      waiters.notify();
    });
  }

  /** Resolves with the first `count` texts once they have arrived. */
  received(count: number): Promise<string[]> {
    return this.waiters.until(
      () => (this.texts.length >= count ? this.texts.slice(0, count) : undefined),
      DEADLINE_MS,
      () => `the client was sent ${count} text frames; it has ${JSON.stringify(this.texts)}`,
    );
  }

  receivedBytes(count: number): Promise<number> {
    return this.waiters.until(() => (this.bytes >= count ? this.bytes : undefined), DEADLINE_MS * 2, () => `${count} bytes awaited, ${this.bytes} arrived`);
  }

  closeEvent(): Promise<{ readonly code: number; readonly reason: string }> {
    return this.waiters.until(() => this.closed, DEADLINE_MS, () => 'the client saw no close');
  }
}

export class Harness {
  readonly accepted: Accepted[] = [];
  readonly requests: SeenRequest[] = [];
  readonly errors: Array<{ readonly error: unknown; readonly where: string }> = [];
  /** Every request to POST /stream/upload, in arrival order. */
  readonly uploads: StreamedUpload[] = [];
  /** Set by a test: /stream/upload reads nothing until it resolves. */
  uploadGate: Promise<void> | undefined;
  /** Bytes the transport has pulled from the bodies of GET /stream/download responses. */
  pulled = 0;
  /** Download bodies the transport cancelled (their client went away). */
  cancelledDownloads = 0;
  /** The controllers of GET /stream/events?mode=manual bodies, in request order: a test writes and closes them. */
  readonly eventStreams: Array<ReadableStreamDefaultController<Uint8Array>> = [];
  /** Bytes the transport has pulled from GET /stream/events?mode=flood bodies. */
  eventBytesPulled = 0;
  /** Event-stream bodies the transport cancelled (their client went away). */
  cancelledEventStreams = 0;
  readonly waiters = new Waiters();
  private readonly clients: WebSocket[] = [];
  private server: TransportServer | undefined;
  port = 0;

  static async start(make: MakeTransport): Promise<Harness> {
    const harness = new Harness();
    harness.server = make({
      http: harness.http,
      websocket: {
        path: WS_PATH,
        maxPayloadBytes: 64 * 1024,
        maxBufferedBytes: MAX_BUFFERED_BYTES,
        idleTimeoutSeconds: 60,
        accept: (connection) => {
          const accepted = new Accepted(connection, harness.waiters);
          harness.accepted.push(accepted);
          harness.waiters.notify();
          return accepted;
        },
      },
      maxBodyBytes: MAX_BODY_BYTES,
      streamsBody: (method, path) => method === 'POST' && path.split('?')[0]?.startsWith('/stream/') === true,
      onError: (error, where) => {
        harness.errors.push({ error, where });
        harness.waiters.notify();
      },
    });
    harness.port = await harness.server.listen('127.0.0.1', 0);
    return harness;
  }

  get transport(): TransportServer {
    if (!this.server) throw new Error('not started');
    return this.server;
  }

  url(path: string, scheme: 'http' | 'ws' = 'http'): string {
    return `${scheme}://127.0.0.1:${this.port}${path}`;
  }

  /**
   * Echoes what it was given on /echo; /throw throws. Streamed: POST /stream/upload hashes the body
   * as it reads it; POST /stream/refuse answers 413 without reading; GET /stream/download?bytes=N
   * answers N pattern bytes with a Content-Length. Anything else is 404.
   */
  private readonly http: HttpHandler = async (request, context) => {
    const url = new URL(request.url);
    if (url.pathname === '/throw') throw new Error('the handler failed');
    if (url.pathname === '/stream/upload') return this.upload(request);
    if (url.pathname === '/stream/refuse') return new Response('too large', { status: 413 });
    if (url.pathname === '/stream/download') return this.download(Number(url.searchParams.get('bytes')));
    if (url.pathname === '/stream/events') return this.events(url.searchParams.get('mode') === 'flood');
    if (url.pathname !== '/echo') return new Response('no such path', { status: 404 });
    const seen: SeenRequest = {
      method: request.method,
      path: `${url.pathname}${url.search}`,
      header: request.headers.get('x-test'),
      body: await request.text(),
      remoteAddress: context.remoteAddress,
    };
    this.requests.push(seen);
    return new Response(JSON.stringify(seen), { status: 201, headers: { 'content-type': 'application/json', 'x-reply': 'yes' } });
  };

  private async upload(request: Request): Promise<Response> {
    const seen: StreamedUpload = { bytes: 0, chunks: 0, outcome: undefined };
    this.uploads.push(seen);
    this.waiters.notify();
    await this.uploadGate;
    const hash = createHash('sha256');
    const reader = (request.body as ReadableStream<Uint8Array>).getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        seen.bytes += value.byteLength;
        seen.chunks += 1;
        hash.update(value);
        this.waiters.notify();
      }
    } catch (error) {
      seen.outcome = (error as Error).name;
      this.waiters.notify();
      return new Response('aborted', { status: 400 });
    }
    seen.outcome = 'whole';
    seen.sha256 = hash.digest('hex');
    this.waiters.notify();
    return new Response(JSON.stringify({ bytes: seen.bytes, chunks: seen.chunks, sha256: seen.sha256 }), { headers: { 'content-type': 'application/json' } });
  }

  private download(total: number): Response {
    let index = 0;
    const body = new ReadableStream<Uint8Array>({
      pull: (controller) => {
        const offset = index * CHUNK_BYTES;
        if (offset >= total) {
          controller.close();
          return;
        }
        const chunk = patternChunk(index++, Math.min(CHUNK_BYTES, total - offset));
        this.pulled += chunk.byteLength;
        this.waiters.notify();
        controller.enqueue(chunk);
      },
      cancel: () => {
        this.cancelledDownloads += 1;
        this.waiters.notify();
      },
    });
    return new Response(body, { headers: { 'content-type': 'application/octet-stream', 'content-length': String(total) } });
  }

  /**
   * A text/event-stream of unknown length. Manual: the test writes each chunk (eventStreams); flood: an
   * endless source of 64 KiB chunks, pulled only as the transport asks.
   */
  private events(flood: boolean): Response {
    const cancel = (): void => {
      this.cancelledEventStreams += 1;
      this.waiters.notify();
    };
    const chunk = new TextEncoder().encode(`data: ${'x'.repeat(CHUNK_BYTES - 9)}\n\n`);
    const body = flood
      ? new ReadableStream<Uint8Array>(
          {
            pull: (controller) => {
              this.eventBytesPulled += chunk.byteLength;
              this.waiters.notify();
              controller.enqueue(chunk);
            },
            cancel,
          },
          { highWaterMark: 0 },
        )
      : new ReadableStream<Uint8Array>({
          start: (controller) => {
            this.eventStreams.push(controller);
            this.waiters.notify();
          },
          cancel,
        });
    return new Response(body, { headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store' } });
  }

  /** Opens a client on the WebSocket path and returns it once the transport has accepted it. */
  async connect(headers: Record<string, string> = {}): Promise<Client> {
    const index = this.accepted.length;
    const ws = new WebSocket(this.url(WS_PATH, 'ws'), { headers });
    this.clients.push(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const accepted = await this.waiters.until(() => this.accepted[index], DEADLINE_MS, () => 'the transport accepted no connection');
    return new Client(ws, accepted, this.waiters);
  }

  /** Tries to upgrade on `path`: the HTTP status of the refusal (or 101 when it was accepted). */
  async upgradeStatus(path: string): Promise<number> {
    const ws = new WebSocket(this.url(path, 'ws'));
    this.clients.push(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(101));
      ws.once('unexpected-response', (_request, response) => {
        resolve(response.statusCode ?? 0);
        response.resume();
        ws.terminate();
      });
      ws.once('error', reject);
    });
  }

  async close(): Promise<void> {
    for (const ws of this.clients) ws.terminate();
    await this.server?.close();
  }
}

/** Runs `work` against a fresh transport, closed after whatever happens. */
export async function withTransport(make: MakeTransport, work: (harness: Harness) => Promise<void>): Promise<void> {
  const harness = await Harness.start(make);
  try {
    await work(harness);
  } finally {
    await harness.close();
  }
}
