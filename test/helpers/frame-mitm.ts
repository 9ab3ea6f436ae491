import { once } from 'node:events';
import WebSocket, { WebSocketServer } from 'ws';
import { Waiters } from './waiters.js';

type Frame = any;

/** Which way a frame travels: `up` from the client to the server, `down` from the server to the client. */
export type Direction = 'up' | 'down';

/**
 * What the test does with a frame: return it (changed or not) to pass it on,
 * `null` to drop it, or a list to send several (an injection next to it).
 */
export type Rewrite = (frame: Frame, link: MitmLink, direction: Direction) => Frame | Frame[] | null;

/** One client's connection through the man in the middle, and its upstream connection to the real server. */
export class MitmLink {
  /** Request ids the client sent, by id, with their type: so a reply can be told apart by what it answers. */
  readonly requests = new Map<string, string>();

  constructor(
    private readonly client: WebSocket,
    private readonly upstream: WebSocket,
    private readonly upstreamOpen: Promise<unknown>,
  ) {}

  /** The request type a reply answers (`keys_get` for a `keys` reply), when the client sent one with that id. */
  answers(frame: Frame): string | undefined {
    return typeof frame?.id === 'string' ? this.requests.get(frame.id) : undefined;
  }

  /** Sends a frame to the client as if the server had sent it. */
  toClient(frame: Frame): void {
    if (this.client.readyState === WebSocket.OPEN) this.client.send(JSON.stringify(frame));
  }

  /** Sends a frame to the server as if the client had sent it. */
  async toServer(frame: Frame): Promise<void> {
    await this.upstreamOpen;
    if (this.upstream.readyState === WebSocket.OPEN) this.upstream.send(JSON.stringify(frame));
  }

  close(): void {
    this.client.terminate();
    this.upstream.terminate();
  }
}

/**
 * A WebSocket man in the middle between SDK clients and a real chatd server:
 * a WebSocket server on a free port (give ChatClient `server: mitm.url`) that
 * opens one upstream connection to the real server per client and passes every
 * JSON frame through `rewrite`, both ways. Every frame's text as it reached the
 * attacker (before any rewrite) is kept in `seen`, so a test can check that no
 * plaintext ever passed through it.
 */
export class FrameMitm {
  /** The text of every frame the attacker saw, both ways, as it arrived. */
  readonly seen: string[] = [];
  readonly links: MitmLink[] = [];
  private readonly waiters = new Waiters();
  /** Replaced at will by the test; passes everything through unchanged by default. */
  rewrite: Rewrite = (frame) => frame;

  private constructor(
    private readonly server: WebSocketServer,
    private readonly upstreamUrl: string,
  ) {}

  /** Listens on a free port of 127.0.0.1; `upstreamUrl` is the real server's WebSocket URL. */
  static async start(upstreamUrl: string): Promise<FrameMitm> {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(server, 'listening');
    const mitm = new FrameMitm(server, upstreamUrl);
    server.on('connection', (client) => mitm.accept(client));
    return mitm;
  }

  /** The HTTP base URL to give ChatClient (only its WebSocket goes through here). */
  get url(): string {
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('not listening');
    return `http://127.0.0.1:${address.port}`;
  }

  /** Whether `needle`'s UTF-8 bytes appear in any frame seen so far. */
  saw(needle: string): boolean {
    const bytes = Buffer.from(needle, 'utf8');
    return this.seen.some((text) => Buffer.from(text, 'utf8').includes(bytes));
  }

  /** Every frame seen so far, parsed. */
  frames(): Frame[] {
    return this.seen.map((text) => JSON.parse(text) as Frame);
  }

  /** Resolves with the first frame seen (so far or later, either way, before any rewrite) that `match` accepts. */
  until(match: (frame: Frame) => boolean, timeoutMs = 10_000): Promise<Frame> {
    return this.waiters.until(() => this.frames().find(match), timeoutMs, () => `no such frame within ${timeoutMs} ms`);
  }

  async close(): Promise<void> {
    for (const link of this.links) link.close();
    this.server.close();
    await once(this.server, 'close');
  }

  private accept(client: WebSocket): void {
    const upstream = new WebSocket(this.upstreamUrl);
    const upstreamOpen = once(upstream, 'open').catch(() => undefined);
    const link = new MitmLink(client, upstream, upstreamOpen);
    this.links.push(link);
    const pass = (data: WebSocket.RawData, direction: Direction, to: WebSocket): void => {
      const text = data.toString();
      this.seen.push(text);
      this.waiters.notify();
      const frame = JSON.parse(text) as Frame;
      if (direction === 'up' && typeof frame.id === 'string' && typeof frame.type === 'string') link.requests.set(frame.id, frame.type);
      const out = this.rewrite(frame, link, direction);
      if (out === null) return;
      for (const one of Array.isArray(out) ? out : [out]) if (to.readyState === WebSocket.OPEN) to.send(JSON.stringify(one));
    };
    client.on('message', (data) => {
      void upstreamOpen.then(() => pass(data, 'up', upstream));
    });
    upstream.on('message', (data) => pass(data, 'down', client));
    // Either side's end ends the other: a close code the other side may send is passed on, anything else cuts.
    const end = (other: WebSocket) => (code: number) => {
      if (other.readyState === WebSocket.CLOSED) return;
      if (code === 1000 || (code >= 3000 && code <= 4999)) other.close(code);
      else other.terminate();
    };
    client.on('close', end(upstream));
    upstream.on('close', end(client));
    client.on('error', () => upstream.terminate());
    upstream.on('error', () => client.terminate());
  }
}
