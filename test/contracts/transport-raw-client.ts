import { createHash, type Hash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { type Socket, connect } from 'node:net';
import { once } from 'node:events';
import { CHUNK_BYTES, patternChunk } from './transport-harness.js';

/**
 * HTTP/1.1 by hand on a real socket, for what fetch hides: how many bytes the
 * kernel has taken from us (a server that stops reading stops that count), a
 * response we do not read, a connection cut mid-body.
 */
export class RawHttpClient {
  readonly socket: Socket;
  /** Body bytes the kernel has accepted (their write callbacks ran). */
  flushed = 0;
  /** Set once the socket closed, by either side. */
  closed = false;
  private received = Buffer.alloc(0);
  private status: number | undefined;
  private headers = new Map<string, string>();
  private readonly hash: Hash = createHash('sha256');
  /** Response body bytes read so far. */
  bodyBytes = 0;
  private stopped = false;

  private constructor(
    socket: Socket,
    private readonly notify: () => void,
  ) {
    this.socket = socket;
    socket.on('data', (data: Buffer) => this.onData(data));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      notify();
    });
  }

  static async open(port: number, notify: () => void): Promise<RawHttpClient> {
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    return new RawHttpClient(socket, notify);
  }

  /** Sends a request head; `headers` without the Host line. */
  sendHead(method: string, path: string, headers: Record<string, string | number> = {}): void {
    const lines = [`${method} ${path} HTTP/1.1`, 'host: 127.0.0.1', ...Object.entries(headers).map(([key, value]) => `${key}: ${value}`)];
    this.socket.write(`${lines.join('\r\n')}\r\n\r\n`);
  }

  /**
   * Writes `total` pattern bytes, one 64 KiB chunk at a time, waiting for 'drain' when the kernel is full.
   * Resolves when all were written, or when stop() was called or the socket closed.
   */
  async writeBody(total: number): Promise<void> {
    for (let index = 0; index * CHUNK_BYTES < total && !this.stopped && !this.closed; index++) {
      const chunk = patternChunk(index, Math.min(CHUNK_BYTES, total - index * CHUNK_BYTES));
      const more = this.socket.write(chunk, (error) => {
        if (error) return;
        this.flushed += chunk.byteLength;
        this.notify();
      });
      if (!more) await this.drained();
    }
  }

  /** Resolves at the socket's next 'drain' or 'close', whichever comes first. */
  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done).off('close', done);
        resolve();
      };
      this.socket.on('drain', done).on('close', done);
    });
  }

  stop(): void {
    this.stopped = true;
  }

  /** The response status once its head arrived (undefined before). */
  responseStatus(): number | undefined {
    return this.status;
  }

  header(name: string): string | undefined {
    return this.headers.get(name.toLowerCase());
  }

  bodySha256(): string {
    return this.hash.copy().digest('hex');
  }

  private onData(data: Buffer): void {
    if (this.status === undefined) {
      this.received = Buffer.concat([this.received, data]);
      const end = this.received.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [statusLine, ...lines] = this.received.subarray(0, end).toString('latin1').split('\r\n');
      this.status = Number(statusLine?.split(' ')[1]);
      for (const line of lines) {
        const colon = line.indexOf(':');
        this.headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      }
      data = this.received.subarray(end + 4);
      this.received = Buffer.alloc(0);
    }
    this.bodyBytes += data.byteLength;
    this.hash.update(data);
    this.notify();
  }
}

/** POSTs `total` pattern bytes with node:http, keeping to backpressure; resolves with the status and the parsed JSON answer. */
export async function postPattern(port: number, path: string, total: number): Promise<{ status: number; json: unknown }> {
  const request = httpRequest({ host: '127.0.0.1', port, path, method: 'POST', agent: false, headers: { 'content-length': total, 'content-type': 'application/octet-stream' } });
  const answered = once(request, 'response') as Promise<[import('node:http').IncomingMessage]>;
  for (let index = 0; index * CHUNK_BYTES < total; index++) {
    if (!request.write(patternChunk(index, Math.min(CHUNK_BYTES, total - index * CHUNK_BYTES)))) await once(request, 'drain');
  }
  request.end();
  const [response] = await answered;
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return { status: response.statusCode ?? 0, json: text.startsWith('{') ? JSON.parse(text) : text };
}
