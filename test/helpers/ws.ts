import WebSocket from 'ws';

type Frame = any;

/**
 * A test WebSocket client. Replies to request() are matched by id; every other
 * frame queues up in arrival order, taken with next() or, by kind, with nextEvent().
 */
export class TestSocket {
  private readonly queue: Frame[] = [];
  private readonly waiters: Array<{ match: (frame: Frame) => boolean; resolve: (frame: Frame) => void }> = [];
  private readonly pending = new Map<string, (frame: Frame) => void>();
  private counter = 0;
  /** Every frame received, in arrival order (replies included). */
  readonly arrivals: Frame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly opened: Promise<void>;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => this.receive(JSON.parse(data.toString())));
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

  /** Every frame that arrives; a subclass may look at it first (a client that fills gaps, test/helpers/gap-fill.ts). */
  protected receive(frame: Frame): void {
    this.arrivals.push(frame);
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
    } else {
      this.queue.push(frame);
    }
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The next frame that is not a reply to request(), in arrival order. */
  next(): Promise<Frame> {
    return this.nextEvent(() => true);
  }

  /** The first queued (or next arriving) frame that matches: a type name or a predicate. */
  nextEvent(match: string | ((frame: Frame) => boolean)): Promise<Frame> {
    const test = typeof match === 'string' ? (frame: Frame) => frame.type === match : match;
    const index = this.queue.findIndex(test);
    if (index >= 0) return Promise.resolve(this.queue.splice(index, 1)[0]);
    return new Promise((resolve) => this.waiters.push({ match: test, resolve }));
  }

  /** Frames queued so far that match, removed from the queue. */
  drain(match: string | ((frame: Frame) => boolean)): Frame[] {
    const test = typeof match === 'string' ? (frame: Frame) => frame.type === match : match;
    const taken = this.queue.filter(test);
    for (const frame of taken) this.queue.splice(this.queue.indexOf(frame), 1);
    return taken;
  }

  /** Sends a request and returns the next frame, whatever it is (for tests of broken frames). */
  async call(frame: Record<string, unknown> | string): Promise<Frame> {
    this.send(frame);
    return this.next();
  }

  /** Sends a request (an id is added) and resolves with the frame that carries its id. */
  request(frame: Record<string, unknown>): Promise<Frame> {
    const id = `r${++this.counter}`;
    const reply = new Promise<Frame>((resolve) => this.pending.set(id, resolve));
    this.send({ ...frame, id });
    return reply;
  }

  /** As request(), failing unless the reply is of `type`. */
  async expect(frame: Record<string, unknown>, type: string): Promise<Frame> {
    const reply = await this.request(frame);
    if (reply.type !== type) throw new Error(`expected ${type} for ${JSON.stringify(frame)}, got ${JSON.stringify(reply)}`);
    return reply;
  }

  close(): void {
    this.ws.close();
  }
}

export interface Connected {
  readonly socket: TestSocket;
  readonly welcome: Frame;
  /** The message events of the offline inbox, in the order they came. */
  readonly inbox: Frame[];
  readonly overflow: boolean;
}

/** Connects and authenticates; returns the socket, its welcome frame and the offline inbox that followed it. `open` makes the socket (a TestSocket by default). */
export async function connectAuthenticated(url: string, token: string, open: (url: string) => Promise<TestSocket> = TestSocket.connect): Promise<Connected> {
  const socket = await open(url);
  const welcome = await socket.call({ type: 'auth', id: 'auth', token });
  if (welcome.type !== 'welcome') throw new Error(`auth failed: ${JSON.stringify(welcome)}`);
  const inbox: Frame[] = [];
  for (;;) {
    const frame = await socket.next();
    if (frame.type === 'inbox_done') {
      if (frame.count !== inbox.length) throw new Error(`inbox_done says ${frame.count} messages, ${inbox.length} came`);
      return { socket, welcome, inbox, overflow: frame.overflow };
    }
    if (frame.type !== 'message') throw new Error(`expected the inbox, got ${JSON.stringify(frame)}`);
    inbox.push(frame);
  }
}
