import { once } from 'node:events';
import { type Server, Socket, createServer } from 'node:net';
import { ResponseFramer, requestHead } from './http-framing.js';

interface Pair {
  readonly client: Socket;
  readonly upstream: Socket;
  /** Bytes from the server are dropped; with `requests` too, bytes to it. Neither side learns when the other closes. */
  stalled: 'no' | 'replies' | 'both';
  /** The response the server is sending on it is an event stream that has not ended. */
  streaming: boolean;
}

export interface ProxyOptions {
  /** Hold each HTTP response until it is complete, as a buffering proxy does: an event stream never gets through (long polls do). */
  readonly bufferStreams?: boolean;
}

/**
 * A TCP proxy between test clients and a chatd server, to make the network
 * faults a real client meets: `cut` (the connection dies without a close
 * frame), `stall` (it stays open but nothing gets through, as behind a dead NAT),
 * `refuse` (the server cannot be reached). Listens on a free port; the server
 * behind it can change (`target`) when the test restarts it on another port.
 *
 * And the proxies that break WebSockets and streams, for the fallback
 * transports: `refuseUpgrades` (403 to a WebSocket upgrade, toggled at run
 * time), `bufferStreams` (responses held until complete), `cutStreams` and
 * `stallStreams` (only the connections carrying an event stream, as a proxy
 * that times out long responses does). It reads the HTTP it carries for
 * these; the bytes it passes on are the same as before.
 */
export class TcpProxy {
  private readonly pairs = new Set<Pair>();
  private refusing = false;
  private refusingUpgrades = false;
  /** Connections accepted so far. */
  accepted = 0;
  /** WebSocket upgrades answered 403. */
  upgradesRefused = 0;

  private constructor(
    private readonly server: Server,
    private targetPort: number,
    private readonly options: ProxyOptions,
  ) {}

  static async start(targetPort: number, options: ProxyOptions = {}): Promise<TcpProxy> {
    const server = createServer();
    const proxy = new TcpProxy(server, targetPort, options);
    server.on('connection', (client) => proxy.accept(client));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return proxy;
  }

  get port(): number {
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy is not listening');
    return address.port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** New connections go to this port from now on. */
  target(port: number): void {
    this.targetPort = port;
  }

  /** Ends every open connection at the TCP level: no WebSocket close frame reaches either side. */
  cut(): void {
    for (const pair of this.pairs) {
      pair.client.resetAndDestroy();
      pair.upstream.destroy();
    }
    this.pairs.clear();
  }

  /**
   * Open connections stay open but carry nothing more: either way (`both`), or
   * only from the server (`replies`: what the client sends still arrives, no
   * answer comes back). New connections work.
   */
  stall(direction: 'both' | 'replies' = 'both'): void {
    for (const pair of this.pairs) pair.stalled = direction;
  }

  /** While on, new connections are accepted and closed at once. */
  refuse(on: boolean): void {
    this.refusing = on;
  }

  /** While on, a request to upgrade to a WebSocket is answered `403 Forbidden` (WebSockets already open stay). */
  refuseUpgrades(on: boolean): void {
    this.refusingUpgrades = on;
  }

  /** Cuts (as `cut`) only the connections carrying an event stream; requests on others go on. Returns how many. */
  cutStreams(): number {
    let cut = 0;
    for (const pair of [...this.pairs]) {
      if (!pair.streaming) continue;
      cut++;
      pair.client.resetAndDestroy();
      pair.upstream.destroy();
      this.pairs.delete(pair);
    }
    return cut;
  }

  /** Drops (as `stall('replies')`) what the server sends on the connections carrying an event stream. Returns how many. */
  stallStreams(): number {
    let stalled = 0;
    for (const pair of this.pairs) {
      if (!pair.streaming) continue;
      stalled++;
      pair.stalled = 'replies';
    }
    return stalled;
  }

  async close(): Promise<void> {
    this.cut();
    this.server.close();
    await once(this.server, 'close');
  }

  private accept(client: Socket): void {
    this.accepted++;
    if (this.refusing) {
      client.resetAndDestroy();
      return;
    }
    const upstream = new Socket();
    const pair: Pair = { client, upstream, stalled: 'no', streaming: false };
    this.pairs.add(pair);
    /** With bufferStreams: the bytes of the response not yet complete. */
    const held: Buffer[] = [];
    const forward = (from: Socket, to: Socket, blockedWhen: ReadonlyArray<Pair['stalled']>, write: (chunk: Buffer) => void): void => {
      from.on('data', (chunk: Buffer) => {
        if (!blockedWhen.includes(pair.stalled) && !to.destroyed) write(chunk);
      });
      from.on('close', () => {
        if (pair.stalled !== 'no') return;
        this.pairs.delete(pair);
        if (to === client && held.length > 0 && !client.destroyed) client.write(Buffer.concat(held.splice(0)));
        to.destroy();
      });
      from.on('error', () => {
        // Reported through 'close'.
      });
    };
    // Only HTTP is read (the proxy also carries Redis in other tests): the first bytes from the client say which.
    let http: boolean | undefined;
    // With upgrades refused, the first request's head is read whole before any of it goes on.
    let head: Buffer | undefined;
    forward(client, upstream, ['both'], (chunk) => {
      if (http === undefined) {
        http = /^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) /.test(chunk.subarray(0, 8).toString('latin1'));
        if (http && this.refusingUpgrades) head = Buffer.alloc(0);
      }
      if (head === undefined) return void upstream.write(chunk);
      head = Buffer.concat([head, chunk]);
      const request = requestHead(head);
      if (!request.complete) return;
      const bytes = head;
      head = undefined;
      if (request.upgrade) {
        this.upgradesRefused++;
        this.pairs.delete(pair);
        upstream.destroy();
        client.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 25\r\nConnection: close\r\n\r\nno WebSockets through me\n');
        return;
      }
      upstream.write(bytes);
    });
    const framer = new ResponseFramer();
    let raw = false;
    forward(upstream, client, ['both', 'replies'], (chunk) => {
      if (raw || !http) return void client.write(chunk);
      const pieces = framer.push(chunk);
      const last = pieces[pieces.length - 1];
      if (last) pair.streaming = last.eventStream && !last.ends;
      if (pieces.some((piece) => piece.upgraded)) raw = true;
      if (!this.options.bufferStreams) return void client.write(chunk);
      for (const piece of pieces) {
        if (piece.upgraded) {
          client.write(Buffer.concat([...held.splice(0), piece.bytes]));
          continue;
        }
        held.push(piece.bytes);
        if (piece.ends) client.write(Buffer.concat(held.splice(0)));
      }
    });
    upstream.connect(this.targetPort, '127.0.0.1');
  }
}
