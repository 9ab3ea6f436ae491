import WebSocket from 'ws';

/** A test WebSocket client: frames queue up and are taken in order with next(). */
export class TestSocket {
  private readonly queue: any[] = [];
  private readonly waiters: Array<(frame: any) => void> = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly opened: Promise<void>;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString());
      const waiter = this.waiters.shift();
      if (waiter) waiter(frame);
      else this.queue.push(frame);
    });
    this.opened = new Promise((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  static async connect(url: string): Promise<TestSocket> {
    const socket = new TestSocket(new WebSocket(url));
    await socket.opened;
    return socket;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The next frame from the server (waits for it). */
  next(): Promise<any> {
    const frame = this.queue.shift();
    if (frame !== undefined) return Promise.resolve(frame);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Sends a request and returns the next frame, its reply. */
  async call(frame: Record<string, unknown> | string): Promise<any> {
    this.send(frame);
    return this.next();
  }

  close(): void {
    this.ws.close();
  }
}

/** Connects and authenticates; returns the socket and its welcome frame. */
export async function connectAuthenticated(url: string, token: string): Promise<{ socket: TestSocket; welcome: any }> {
  const socket = await TestSocket.connect(url);
  const welcome = await socket.call({ type: 'auth', id: 'auth', token });
  if (welcome.type !== 'welcome') throw new Error(`auth failed: ${JSON.stringify(welcome)}`);
  return { socket, welcome };
}
