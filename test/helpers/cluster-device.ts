import WebSocket from 'ws';
import { type DeviceStore, fillGap } from './gap-fill.js';
import { TestSocket } from './ws.js';

type Frame = any;

/** One message a device meant to send, and what became of it. */
export interface Sent {
  readonly device: string;
  readonly threadId: number;
  readonly clientMsgId: string;
  readonly body: { text: string };
  /** The ack that settled it (a resend's, when the first ack was lost with its node). */
  ack?: { seq: number; messageId: number; duplicate: boolean };
  /** How many times it was sent (1 + resends after a lost connection or a retryable error). */
  attempts: number;
}

/** What the device needs of the cluster: where to connect now. */
export interface NodePicker {
  /** The WebSocket URL of a running node, and its number; called again after a failed attempt. */
  next(): { node: number; wsUrl: string };
}

/** A socket that hands events to its device instead of queueing them; replies go to their requests as usual. */
class DeviceSocket extends TestSocket {
  constructor(
    ws: WebSocket,
    private readonly onEvent: (frame: Frame) => void,
  ) {
    super(ws);
    ws.on('error', () => {}); // A killed node resets the connection: reported through 'close'.
  }

  protected override receive(frame: Frame): void {
    if (typeof frame.id === 'string') super.receive(frame);
    else this.onEvent(frame);
  }
}

/** One connection of a device. */
export interface Link {
  readonly socket: DeviceSocket;
  readonly node: number;
  /** (thread, seq) delivered live on this connection: twice is a server fault. */
  readonly liveSeen: Set<string>;
  /** Threads whose gap is being filled on this connection. */
  readonly filling: Set<number>;
  /** Live messages per thread since the last `delivered`. */
  readonly sinceAck: Map<number, number>;
  /** inbox_done came: what follows is live. */
  live: boolean;
  readonly inbox: Frame[];
  /** Per thread, the highest seq held without a gap once the inbox was in (before sync). */
  readonly afterInbox: Map<number, number>;
  readonly inboxDone: Promise<Frame>;
  closed: boolean;
}

const key = (threadId: number, seq: number): string => `${threadId}/${seq}`;

/**
 * A device as a client app runs it against several nodes behind a load
 * balancer, following docs/protocol.md: one connection at a time, to whichever
 * node the picker gives; after each connect, the inbox, then `sync` with its
 * cursors (again while `has_more`), then `delivered` per thread; a live
 * message past a gap fills it by `history`; unacked sends stay in an outbox
 * and go again, with their client_msg_id, on the next connection; a retryable
 * error is retried. Everything it receives goes into its DeviceStore; what
 * would be a server fault (two ids at one seq, a message twice live on one
 * connection or twice in one inbox, an inbox out of seq order) is kept in
 * `faults` for the test to assert on.
 */
export class ClusterDevice {
  private link: Link | undefined;
  private connecting: Promise<Link> | undefined;
  private readonly outbox = new Map<string, Sent>();
  readonly faults: string[] = [];
  /** Sends refused with an error that is not retryable. */
  readonly refused: Array<{ sent: Sent; error: Frame }> = [];
  /** Nodes connected to, in order. */
  readonly connections: number[] = [];
  /** Gaps filled by history, live. */
  fills = 0;

  constructor(
    readonly name: string,
    readonly token: string,
    readonly deviceId: number,
    readonly threads: readonly number[],
    readonly store: DeviceStore,
    private readonly picker: NodePicker,
    private readonly onAck: (sent: Sent) => void = () => {},
  ) {}

  /** The node of the current connection, if any. */
  get node(): number | undefined {
    return this.link && !this.link.closed ? this.link.node : undefined;
  }

  /** Resolves with the connection once it is caught up (inbox, sync, delivered): now, or after the connection under way. */
  ready(): Promise<Link> {
    if (this.link && !this.link.closed) return Promise.resolve(this.link);
    this.connecting ??= this.connectSomewhere().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  /** Closes the connection; the next `ready` connects again (to the node the picker gives). */
  async disconnect(): Promise<void> {
    const link = this.link;
    if (!link || link.closed) return;
    link.socket.close();
    await link.socket.closed;
  }

  /**
   * Sends a message and resolves once it is acked: again on the next
   * connection when this one is lost, again after a retryable error. A
   * non-retryable error is recorded in `refused`.
   */
  async send(sent: Sent): Promise<void> {
    this.outbox.set(sent.clientMsgId, sent);
    for (let attempt = 0; ; attempt++) {
      if (attempt > 200) throw new Error(`${this.name}: ${sent.clientMsgId} was never acked in ${attempt} attempts`);
      const link = await this.ready();
      sent.attempts++;
      const reply = await Promise.race([
        link.socket.request({ type: 'send', thread_id: sent.threadId, client_msg_id: sent.clientMsgId, body: sent.body }),
        link.socket.closed.then(() => undefined),
      ]);
      if (reply === undefined) continue;
      if (reply.type === 'ack') {
        if (reply.client_msg_id !== sent.clientMsgId || reply.thread_id !== sent.threadId) this.faults.push(`${this.name}: ack ${JSON.stringify(reply)} for ${sent.clientMsgId}`);
        sent.ack = { seq: reply.seq, messageId: reply.message_id, duplicate: reply.duplicate };
        this.outbox.delete(sent.clientMsgId);
        this.store.add({ id: reply.message_id, thread_id: sent.threadId, seq: reply.seq, client_msg_id: sent.clientMsgId, sender_device_id: this.deviceId }, 'own');
        this.onAck(sent);
        return;
      }
      if (reply.type === 'error' && reply.error.retryable) {
        // What the protocol says to do with a retryable error: the same request again, a little later.
        await pause(reply.error.retry_after_ms ?? 20);
        continue;
      }
      this.outbox.delete(sent.clientMsgId);
      this.refused.push({ sent, error: reply });
      return;
    }
  }

  /** Unacked sends. */
  get pending(): number {
    return this.outbox.size;
  }

  /** Closes the connection and connects again (to the node the picker gives next), caught up as after any connect. */
  async reconnect(): Promise<Link> {
    await this.connecting?.catch(() => undefined);
    await this.disconnect();
    return this.ready();
  }

  private async connectSomewhere(): Promise<Link> {
    const deadline = Date.now() + 20_000;
    let lastError = '';
    for (let attempt = 0; Date.now() < deadline; attempt++) {
      try {
        const { node, wsUrl } = this.picker.next();
        return await this.connect(node, wsUrl);
      } catch (error) {
        lastError = String(error);
        // A node that is going away, or an engine that is back in a moment: the next node, a little later (a client's backoff).
        await pause(Math.min(20 * 2 ** Math.min(attempt, 4), 300));
      }
    }
    throw new Error(`${this.name}: no node took the connection within 20 s; last: ${lastError}`);
  }

  private async connect(node: number, wsUrl: string): Promise<Link> {
    let inboxDone!: (frame: Frame) => void;
    const link: Link = {
      socket: undefined as unknown as DeviceSocket,
      node,
      liveSeen: new Set(),
      filling: new Set(),
      sinceAck: new Map(),
      live: false,
      inbox: [],
      afterInbox: new Map(),
      inboxDone: new Promise((resolve) => (inboxDone = resolve)),
      closed: false,
    };
    const socket = new DeviceSocket(new WebSocket(wsUrl), (frame) => this.event(link, frame, inboxDone));
    (link as { socket: DeviceSocket }).socket = socket;
    void socket.closed.then(() => {
      link.closed = true;
    });
    await socket.opened;
    const gone = socket.closed.then(() => {
      throw new Error(`${this.name}: node ${node} closed the connection while it caught up`);
    });
    gone.catch(() => {});
    try {
      const welcome = await Promise.race([socket.request({ type: 'auth', token: this.token }), gone]);
      if (welcome.type !== 'welcome') throw new Error(`${this.name}: auth on node ${node}: ${JSON.stringify(welcome)}`);
      const done = await Promise.race([link.inboxDone, gone]);
      if (done.count !== link.inbox.length) this.faults.push(`${this.name}: inbox_done says ${done.count} messages, ${link.inbox.length} came`);
      this.checkInbox(link.inbox);
      for (const threadId of this.threads) link.afterInbox.set(threadId, this.store.top(threadId));
      await Promise.race([this.catchUp(link), gone]);
      // Only now the connection is the device's: whoever calls ready() meanwhile waits for the catch-up.
      this.link = link;
      this.connections.push(node);
      return link;
    } catch (error) {
      socket.close();
      throw error;
    }
  }

  /** After the inbox: sync with the cursors of every thread, again while a thread has more, then delivered per thread. */
  private async catchUp(link: Link): Promise<void> {
    for (let round = 0; ; round++) {
      if (round > 100) throw new Error(`${this.name}: sync never finished`);
      const reply = await link.socket.request({ type: 'sync', cursors: this.threads.map((threadId) => ({ thread_id: threadId, seq: this.store.top(threadId) })) });
      if (reply.type !== 'sync') throw new Error(`${this.name}: sync: ${JSON.stringify(reply)}`);
      for (const thread of reply.threads) for (const message of thread.messages) this.take(message, 'reply');
      if (!reply.threads.some((thread: Frame) => thread.has_more)) break;
    }
    // Sync brought everything after each cursor: a gap still open is one a live message opened meanwhile; fill it.
    for (const threadId of this.threads) await this.fill(link, threadId);
    await Promise.all(this.threads.map((threadId) => this.ackDelivered(link, threadId)));
  }

  private event(link: Link, frame: Frame, inboxDone: (frame: Frame) => void): void {
    if (frame.type === 'inbox_done') {
      // Set here, not after the await: ws may hand over the live messages behind it in the same turn.
      link.live = true;
      inboxDone(frame);
      return;
    }
    if (frame.type !== 'message') return; // receipts, typing, presence: not what this client checks
    const message = frame.message;
    if (!link.live) {
      // Before inbox_done: the inbox.
      link.inbox.push(message);
      this.take(message, 'inbox');
      return;
    }
    const where = key(message.thread_id, message.seq);
    if (link.liveSeen.has(where)) this.faults.push(`${this.name}: ${where} delivered live twice on one connection (node ${link.node})`);
    link.liveSeen.add(where);
    this.take(message, 'live');
    if (message.seq > this.store.top(message.thread_id) + 1) void this.fill(link, message.thread_id);
    const since = (link.sinceAck.get(message.thread_id) ?? 0) + 1;
    link.sinceAck.set(message.thread_id, since);
    if (since >= 50) void this.ackDelivered(link, message.thread_id);
  }

  private take(message: Frame, source: 'live' | 'inbox' | 'reply' | 'fill'): void {
    try {
      this.store.add(message, source);
    } catch (error) {
      this.faults.push(String(error));
    }
  }

  /** Closes the thread's gaps below the highest seq held (docs/protocol.md, "Gap fill"); one fill per thread at a time. */
  private async fill(link: Link, threadId: number): Promise<void> {
    if (link.filling.has(threadId)) return;
    link.filling.add(threadId);
    try {
      while (this.store.top(threadId) < this.store.highest(threadId) && !link.closed) {
        this.fills++;
        const added = await Promise.race([
          fillGap((frame) => link.socket.request(frame), this.store, threadId, this.store.highest(threadId)),
          link.socket.closed.then(() => undefined),
        ]);
        if (!added || added.length === 0) break;
      }
    } catch (error) {
      this.faults.push(String(error));
    } finally {
      link.filling.delete(threadId);
    }
  }

  /** `delivered` up to the highest seq held without a gap; resolves with the reply, or when the connection is gone. */
  private async ackDelivered(link: Link, threadId: number): Promise<void> {
    link.sinceAck.set(threadId, 0);
    const seq = this.store.top(threadId);
    if (seq === 0 || link.closed) return;
    const reply = await Promise.race([link.socket.request({ type: 'delivered', thread_id: threadId, seq }), link.socket.closed.then(() => undefined)]);
    if (reply && reply.type !== 'delivered' && !reply.error?.retryable) this.faults.push(`${this.name}: delivered ${threadId}/${seq}: ${JSON.stringify(reply)}`);
  }

  /** One inbox: no (thread, seq) twice, each thread in seq order. */
  private checkInbox(inbox: Frame[]): void {
    const seen = new Set<string>();
    const last = new Map<number, number>();
    for (const message of inbox) {
      const where = key(message.thread_id, message.seq);
      if (seen.has(where)) this.faults.push(`${this.name}: ${where} twice in one inbox`);
      seen.add(where);
      if ((last.get(message.thread_id) ?? 0) >= message.seq) this.faults.push(`${this.name}: inbox out of seq order at ${where}`);
      last.set(message.thread_id, message.seq);
    }
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
