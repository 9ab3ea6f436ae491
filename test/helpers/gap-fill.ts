import WebSocket from 'ws';
import { TestSocket } from './ws.js';

type Frame = any;

/** How a device came to hold a message. */
export type Source = 'live' | 'inbox' | 'fill' | 'reply' | 'own';

interface Held {
  readonly id: number;
  readonly source: Source;
  readonly message: Frame;
}

interface ThreadHeld {
  readonly messages: Map<number, Held>;
  /** The highest seq below which nothing is missing (seqs this device may not see count as held). */
  top: number;
}

/**
 * What one device holds, kept the way docs/protocol.md tells a client to
 * ("Dedupe", "Gap fill"): each (thread_id, seq) once, whichever way it came —
 * live, from the inbox, from sync or history. It outlives connections, as a
 * client's database does. Two different message ids at one (thread, seq) are
 * a server fault: `add` throws, naming both.
 */
export class DeviceStore {
  private readonly threads = new Map<number, ThreadHeld>();

  constructor(readonly name = 'device') {}

  private thread(threadId: number): ThreadHeld {
    let held = this.threads.get(threadId);
    if (!held) this.threads.set(threadId, (held = { messages: new Map(), top: 0 }));
    return held;
  }

  /** Stores a message (as the wire shapes it); false when the device held it already. */
  add(message: Frame, source: Source): boolean {
    const held = this.thread(message.thread_id);
    const before = held.messages.get(message.seq);
    if (before) {
      if (before.id !== message.id) {
        throw new Error(`${this.name}: two messages at thread ${message.thread_id} seq ${message.seq}: id ${before.id} (${before.source}) and id ${message.id} (${source})`);
      }
      return false;
    }
    held.messages.set(message.seq, { id: message.id, source, message });
    while (held.messages.has(held.top + 1)) held.top++;
    return true;
  }

  /** Seqs up to `upTo` this device may not see (a group's history starts after the member joined): they count as held. */
  hide(threadId: number, upTo: number): void {
    const held = this.thread(threadId);
    if (upTo > held.top) held.top = upTo;
    while (held.messages.has(held.top + 1)) held.top++;
  }

  has(threadId: number, seq: number): boolean {
    return this.threads.get(threadId)?.messages.has(seq) ?? false;
  }

  source(threadId: number, seq: number): Source | undefined {
    return this.threads.get(threadId)?.messages.get(seq)?.source;
  }

  /** The highest seq held with nothing missing below it (what `delivered` acks and `sync` cursors carry). */
  top(threadId: number): number {
    return this.threads.get(threadId)?.top ?? 0;
  }

  /** The highest seq held at all. */
  highest(threadId: number): number {
    const held = this.threads.get(threadId);
    return held ? Math.max(held.top, ...held.messages.keys()) : 0;
  }

  /** Whether anything is held in the thread (seqs hidden included). */
  knows(threadId: number): boolean {
    const held = this.threads.get(threadId);
    return held !== undefined && (held.top > 0 || held.messages.size > 0);
  }

  threadIds(): number[] {
    return [...this.threads.keys()];
  }

  /** The messages held in a thread, in seq order. */
  messages(threadId: number): Frame[] {
    const held = this.threads.get(threadId);
    return held ? [...held.messages.entries()].sort(([a], [b]) => a - b).map(([, h]) => h.message) : [];
  }

  /** How many messages came by each way. */
  sources(): Record<Source, number> {
    const counts: Record<Source, number> = { live: 0, inbox: 0, fill: 0, reply: 0, own: 0 };
    for (const held of this.threads.values()) for (const { source } of held.messages.values()) counts[source]++;
    return counts;
  }
}

/** Sends a request frame and resolves with its reply. */
export type Ask = (frame: Record<string, unknown>) => Promise<Frame>;

/**
 * Closes a thread's gaps up to `upTo` the way docs/protocol.md ("Gap fill")
 * says: `history` `after` the highest gap-free seq, page after page. A first
 * page that starts past seq 1 while the device holds nothing there is the
 * start of what the device may see (it joined later); any other skip in
 * history is a server fault and throws. Resolves with the messages it added.
 */
export async function fillGap(ask: Ask, store: DeviceStore, threadId: number, upTo: number): Promise<Frame[]> {
  const added: Frame[] = [];
  while (store.top(threadId) < upTo) {
    const after = store.top(threadId);
    const page = await ask({ type: 'history', thread_id: threadId, after, limit: 100 });
    if (page.type !== 'messages') throw new Error(`${store.name}: history after ${after} in thread ${threadId}: ${JSON.stringify(page)}`);
    const first = page.messages[0];
    if (!first) break; // Nothing after it that this device may see: the gap is above its view (it left the thread).
    if (first.seq > after + 1) {
      if (after !== 0) throw new Error(`${store.name}: history after ${after} in thread ${threadId} starts at seq ${first.seq}`);
      store.hide(threadId, first.seq - 1);
    }
    for (const message of page.messages) if (store.add(message, 'fill')) added.push(message);
    if (!page.has_more_after) break;
  }
  return added;
}

/**
 * A test socket whose live `message` events go through a client's gap fill
 * first (the cluster run of the protocol suite: the bus may lose a
 * publication, so a client fills gaps from per-thread seqs and the test sees
 * what such a client shows). A message whose seq leaves a gap in its thread
 * is held back; `history` fills the gap; then the missing messages and the
 * held ones come out in seq order, as ordinary `message` events. A later live
 * copy of a message filled in that way is dropped (dedupe); any other repeat
 * goes through, so the test still sees a server that delivers twice. Inbox
 * messages (before `inbox_done`) and the replies to the test's own history and
 * sync are stored, never held. The fill's requests use their own ids, so the
 * test's request ids are as they would be without it.
 */
export class GapFillingSocket extends TestSocket {
  private live = false;
  /** Live messages held back per thread while its gap is filled. */
  private readonly holding = new Map<number, Frame[]>();
  private readonly asked = new Map<string, (frame: Frame) => void>();
  private asks = 0;
  /** Gaps filled on this connection. */
  filled = 0;

  constructor(
    ws: WebSocket,
    readonly store: DeviceStore,
  ) {
    super(ws);
  }

  static open(store: DeviceStore): (url: string) => Promise<TestSocket> {
    return async (url) => {
      const socket = new GapFillingSocket(new WebSocket(url), store);
      await socket.opened;
      return socket;
    };
  }

  protected override receive(frame: Frame): void {
    const answer = typeof frame.id === 'string' ? this.asked.get(frame.id) : undefined;
    if (answer) {
      this.asked.delete(frame.id);
      answer(frame);
      return;
    }
    if (frame.type === 'inbox_done') this.live = true;
    if (frame.type === 'message' && frame.id === undefined) {
      this.liveMessage(frame);
      return;
    }
    if (frame.type === 'messages') for (const message of frame.messages) this.store.add(message, 'reply');
    if (frame.type === 'sync') for (const thread of frame.threads) for (const message of thread.messages) this.store.add(message, 'reply');
    super.receive(frame);
  }

  private liveMessage(frame: Frame): void {
    const message = frame.message;
    if (!this.live) {
      this.store.add(message, 'inbox');
      super.receive(frame);
      return;
    }
    const held = this.holding.get(message.thread_id);
    if (held) {
      held.push(frame);
      return;
    }
    if (this.store.has(message.thread_id, message.seq)) {
      if (this.store.source(message.thread_id, message.seq) !== 'fill') super.receive(frame);
      return;
    }
    if (this.store.top(message.thread_id) >= message.seq - 1) {
      this.store.add(message, 'live');
      super.receive(frame);
      return;
    }
    this.holding.set(message.thread_id, [frame]);
    void this.fill(message.thread_id);
  }

  private async fill(threadId: number): Promise<void> {
    this.filled++;
    const added: Frame[] = [];
    for (;;) {
      const held = this.holding.get(threadId) as Frame[];
      const need = Math.max(...held.map((frame) => frame.message.seq as number)) - 1;
      if (this.store.top(threadId) >= need) break;
      const more = await fillGap((request) => this.ask(request), this.store, threadId, need);
      if (more.length === 0) break;
      added.push(...more);
    }
    const held = this.holding.get(threadId) as Frame[];
    this.holding.delete(threadId);
    const out = [...added.map((message) => ({ type: 'message', message })), ...held.filter((frame) => this.store.add(frame.message, 'live'))];
    out.sort((a, b) => a.message.seq - b.message.seq);
    for (const frame of out) super.receive(frame);
  }

  private ask(frame: Record<string, unknown>): Promise<Frame> {
    const id = `gap-fill-${++this.asks}`;
    const reply = new Promise<Frame>((resolve) => this.asked.set(id, resolve));
    this.send({ ...frame, id });
    return reply;
  }
}
