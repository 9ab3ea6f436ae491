import { once } from 'node:events';
import { type Server, Socket, createServer } from 'node:net';

interface Pair {
  readonly client: Socket;
  readonly upstream: Socket;
  /** Bytes from the server are dropped; with `requests` too, bytes to it. Neither side learns when the other closes. */
  stalled: 'no' | 'replies' | 'both';
}

/**
 * A TCP proxy between test clients and a chatd server, to make the network
 * faults a real client meets: `cut` (the connection dies without a close
 * frame), `stall` (it stays open but nothing gets through, as behind a dead NAT),
 * `refuse` (the server cannot be reached). Listens on a free port; the server
 * behind it can change (`target`) when the test restarts it on another port.
 */
export class TcpProxy {
  private readonly pairs = new Set<Pair>();
  private refusing = false;
  /** Connections accepted so far. */
  accepted = 0;

  private constructor(
    private readonly server: Server,
    private targetPort: number,
  ) {}

  static async start(targetPort: number): Promise<TcpProxy> {
    const server = createServer();
    const proxy = new TcpProxy(server, targetPort);
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
    const pair: Pair = { client, upstream, stalled: 'no' };
    this.pairs.add(pair);
    const forward = (from: Socket, to: Socket, blockedWhen: ReadonlyArray<Pair['stalled']>): void => {
      from.on('data', (chunk) => {
        if (!blockedWhen.includes(pair.stalled) && !to.destroyed) to.write(chunk);
      });
      from.on('close', () => {
        if (pair.stalled !== 'no') return;
        this.pairs.delete(pair);
        to.destroy();
      });
      from.on('error', () => {
        // Reported through 'close'.
      });
    };
    forward(client, upstream, ['both']);
    forward(upstream, client, ['both', 'replies']);
    upstream.connect(this.targetPort, '127.0.0.1');
  }
}
