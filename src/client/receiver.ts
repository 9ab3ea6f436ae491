import type { MessageJson, ThreadJson } from '../protocol/frames.js';
import type { Connection } from './connection.js';
import { ClientError } from './errors.js';
import { isTransient } from './ordered-delivery.js';
import { ThreadLog } from './thread-log.js';

export interface ReceiverOptions {
  /**
   * Gives the app a message: called once per message, in seq order per thread.
   * A promise (a message being decrypted) settles once the app has it: until
   * then its cursor is neither stored nor acked, so a crash gives it again.
   */
  readonly deliver: (message: MessageJson) => void | Promise<void>;
  /** A thread the client had not seen before got its first message. */
  readonly discovered: (threadId: number) => void;
  /** Stores how far the app has been given a thread. */
  readonly saveCursor: (threadId: number, seq: number) => void;
  /** On a device that starts afresh, how many of each thread's newest unread messages to give the app. */
  readonly catchUpLimit: number;
  readonly reportError: (error: unknown) => void;
  /** A message was held back and `connection` is about to be dropped so that it comes again. */
  readonly heldBack: (connection: Connection) => void;
}

/**
 * The receiving half of the delivery contract (docs/protocol.md, flows 1, 4, 5, 7):
 * turns the inbox, `sync` pages, gap fills and live events into one ordered,
 * deduplicated stream per thread, and acks with `delivered` what the app has.
 */
export class Receiver {
  private logs = new Map<number, ThreadLog>();
  private connection: Connection | undefined;
  /** Until a fresh device has a starting point for each thread, arrivals wait here. */
  private held: MessageJson[] | undefined;
  private caughtUp = false;
  private readonly filling = new Set<number>();
  private readonly acked = new Map<number, number>();
  /** Per thread, the highest seq the app has been handed (what is stored and acked). */
  private handed = new Map<number, number>();
  private readonly acking = new Set<number>();
  private ackTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly toAck = new Set<number>();

  constructor(private readonly options: ReceiverOptions) {}

  /** Cursors from the store. */
  load(cursors: ReadonlyMap<number, number>): void {
    for (const [threadId, seq] of cursors) {
      this.logs.set(threadId, new ThreadLog(seq));
      this.handed.set(threadId, seq);
    }
  }

  /** The server's data was replaced (new epoch): every cursor is meaningless now. */
  reset(): void {
    this.logs = new Map();
    this.handed = new Map();
    this.acked.clear();
  }

  cursors(): Map<number, number> {
    return new Map([...this.logs].map(([threadId, log]) => [threadId, log.cursor]));
  }

  /**
   * A new connection: from now until `catchUp` has run, messages are ordered
   * but gaps are left for the catch-up to close. A device without cursors
   * (`fresh`) holds every arrival until it knows where each thread starts.
   */
  attach(connection: Connection, fresh: boolean): void {
    this.connection = connection;
    this.caughtUp = false;
    this.held = fresh ? [] : undefined;
    this.acked.clear();
    this.acking.clear();
    this.filling.clear();
  }

  detach(): void {
    this.connection = undefined;
    this.caughtUp = false;
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
  }

  /** A `message` event: from the inbox or live. */
  offer(message: MessageJson): void {
    if (this.held) {
      this.held.push(message);
      return;
    }
    const log = this.logFor(message.thread_id);
    this.release(message.thread_id, log.offer(message));
    this.scheduleAck(message.thread_id);
    if (log.hasGap && this.caughtUp) void this.fillGap(message.thread_id);
  }

  /**
   * After `inbox_done`: sets the starting points of a fresh device from the
   * thread list, then `sync`s every thread until nothing is missing, then fills
   * the gaps live events left.
   */
  async catchUp(connection: Connection, threads: readonly ThreadJson[]): Promise<void> {
    if (this.held) {
      for (const thread of threads) {
        if (this.logs.has(thread.id)) continue;
        // A new device starts at the user's read cursor, at most catchUpLimit messages back: older ones are history.
        const start = Math.min(thread.last_seq, Math.max(thread.read_seq, thread.last_seq - this.options.catchUpLimit));
        this.logs.set(thread.id, new ThreadLog(start));
        this.handed.set(thread.id, start);
        this.options.saveCursor(thread.id, start);
        this.scheduleAck(thread.id);
      }
      const held = this.held;
      this.held = undefined;
      for (const message of held) this.offer(message);
    }
    // Cursors go in slices that keep each frame under the server's limit: a cursor is at most about 40 bytes of JSON.
    const perFrame = Math.max(1, Math.floor(((connection.welcome?.limits.max_frame_bytes ?? 65_536) - 100) / 40));
    for (let more = true; more && connection === this.connection; ) {
      const cursors = [...this.cursors()];
      more = false;
      for (let from = 0; from === 0 || from < cursors.length; from += perFrame) {
        const sent = new Map(cursors.slice(from, from + perFrame));
        const reply = await connection.request({ type: 'sync', cursors: [...sent].map(([thread_id, seq]) => ({ thread_id, seq })) });
        if (connection !== this.connection) return;
        for (const page of reply.threads) {
          // Every sync also answers for the threads it does not list (from the server's record of acks): take those from
          // the request that lists them, or from the first when none does (a thread new to this device).
          const listed = sent.has(page.thread_id);
          if (!listed && (from > 0 || cursors.some(([threadId]) => threadId === page.thread_id))) continue;
          const log = this.logFor(page.thread_id);
          this.release(page.thread_id, log.applyPage(sent.get(page.thread_id) ?? 0, page.messages));
          this.scheduleAck(page.thread_id);
          if (page.has_more) more = true;
        }
      }
    }
    if (connection !== this.connection) return;
    this.caughtUp = true;
    for (const [threadId, log] of this.logs) if (log.hasGap) void this.fillGap(threadId);
  }

  private logFor(threadId: number): ThreadLog {
    let log = this.logs.get(threadId);
    if (!log) {
      // A thread first seen now was created or joined after this device's starting point: all of it is new.
      log = new ThreadLog(0);
      this.logs.set(threadId, log);
      this.options.discovered(threadId);
    }
    return log;
  }

  private release(threadId: number, messages: readonly MessageJson[]): void {
    if (messages.length === 0) return;
    const log = this.logs.get(threadId);
    const cursor = log?.cursor ?? 0;
    const handed = (upTo: number): void => {
      // A reset (new epoch) since: these cursors belong to the old data.
      if (this.logs.get(threadId) !== log || (this.handed.get(threadId) ?? 0) >= upTo) return;
      this.handed.set(threadId, upTo);
      this.options.saveCursor(threadId, upTo);
      this.scheduleAck(threadId);
    };
    let last: void | Promise<void> = undefined;
    for (const message of messages) {
      last = this.options.deliver(message);
      // Each message the app has moves the cursor (those given at once too), so that one held back (below) is the first
      // to come again, and nothing before it is given twice.
      if (last instanceof Promise) void last.then(() => handed(message.seq), () => undefined);
      else handed(message.seq);
    }
    if (!(last instanceof Promise)) return handed(cursor);
    void last.then(
      () => handed(cursor),
      (error: unknown) => {
        if (!isTransient(error)) return this.options.reportError(error);
        // Held back: the thread starts again where the app is; a new connection brings the rest again.
        if (this.logs.get(threadId) === log) this.logs.set(threadId, new ThreadLog(this.handed.get(threadId) ?? 0));
        if (!this.connection) return;
        this.options.heldBack(this.connection);
        this.connection.abandon('no_reply');
      },
    );
  }

  /** Asks `history after` the cursor until the gap is closed (flow 5). */
  private async fillGap(threadId: number): Promise<void> {
    const connection = this.connection;
    if (!connection || this.filling.has(threadId)) return;
    this.filling.add(threadId);
    try {
      for (let log = this.logs.get(threadId); log?.hasGap && connection === this.connection; log = this.logs.get(threadId)) {
        const after = log.cursor;
        const messages = await this.pageAfter(connection, threadId, after);
        if (connection !== this.connection || this.logs.get(threadId) !== log) return;
        // An empty page with a message still held: the server says nothing visible lies between; skip the gap.
        this.release(threadId, messages.length > 0 ? log.applyPage(after, messages) : log.skipGap());
        this.scheduleAck(threadId);
      }
    } catch (error) {
      if (connection === this.connection) {
        this.options.reportError(error);
        const log = this.logs.get(threadId);
        // Refused for good (no longer a member): what is held is all there is. Otherwise (a timeout, a rate limit)
        // the messages cannot be given out until the gap closes: start over on a new connection, which catches up again.
        if (error instanceof ClientError && !error.retryable && log) this.release(threadId, log.skipGap());
        else connection.abandon('no_reply');
      }
    } finally {
      this.filling.delete(threadId);
    }
  }

  /**
   * Every seq of the thread after `after` the device may see, one page. Since protocol 3 a page of `history` leaves
   * change messages out unless asked for them (`changes`): their seqs would be skipped as invisible, the edits,
   * deletes and reactions lost.
   */
  private async pageAfter(connection: Connection, threadId: number, after: number): Promise<readonly MessageJson[]> {
    const changes = (connection.welcome?.protocol ?? 0) >= 3 ? { changes: true } : {};
    const page = await connection.request({ type: 'history', thread_id: threadId, after, limit: connection.welcome?.limits.history_page_max ?? 200, ...changes });
    return page.messages;
  }

  /** Acks with `delivered` what the app has been given, once per thread per moment (coalesced). */
  private scheduleAck(threadId: number): void {
    this.toAck.add(threadId);
    this.ackTimer ??= setTimeout(() => {
      this.ackTimer = undefined;
      for (const id of this.toAck) void this.ack(id);
      this.toAck.clear();
    }, 0);
  }

  private async ack(threadId: number): Promise<void> {
    const connection = this.connection;
    const handed = this.handed.get(threadId) ?? 0;
    if (!connection || this.acking.has(threadId)) return;
    if (handed === 0 || (this.acked.get(threadId) ?? -1) >= handed) return;
    this.acking.add(threadId);
    try {
      const seq = handed;
      await connection.request({ type: 'delivered', thread_id: threadId, seq });
      if (connection !== this.connection) return;
      this.acked.set(threadId, seq);
    } catch (error) {
      if (connection === this.connection) this.options.reportError(error);
      return;
    } finally {
      this.acking.delete(threadId);
    }
    // The cursor moved while the ack was in flight: ack again.
    if ((this.acked.get(threadId) ?? 0) < (this.handed.get(threadId) ?? 0)) this.scheduleAck(threadId);
  }
}
