import type { Clock, Timer } from '../clock.js';
import type { DeliveryService } from '../services/delivery.js';
import { messageEventText } from '../protocol/encode.js';

/** Inbox messages read at a time. */
const INBOX_PAGE = 200;
/** How soon to look again at a socket whose send buffer was too full to go on with the inbox. */
const DRAIN_RETRY_MS = 20;

export interface InboxDrainDeps {
  readonly delivery: Pick<DeliveryService, 'inboxPage'>;
  readonly clock: Clock;
  /** The slow-consumer limit: past half of it, the drain waits for the socket. */
  readonly maxBufferedBytes: number;
  bufferedAmount(): number;
  sendText(text: string): void;
  isClosed(): boolean;
  /**
   * The inbox is through. Called in the same continuation as the read of the
   * last (empty) page, with no await between: the caller follows its channels
   * there (see `InboxDrain`).
   */
  done(count: number, overflow: boolean, threadIds: readonly number[]): void;
  /** Reading the inbox failed: the connection cannot go on without it. */
  failed(error: unknown): void;
}

/**
 * Sends one connection's offline inbox, paced: past half the slow-consumer
 * limit it waits for the socket to drain (the transport's drain event, or a
 * retry on the Clock), so a large inbox over a slow link is not cut.
 *
 * Nothing live overtakes the inbox and nothing falls between: `done` runs in
 * the continuation of the last (empty) page's read. A message committed before
 * that read is in the page; one committed after it is fanned out after its own
 * commit, in a later turn, when the connection already follows its channels
 * (the in-memory broker and SQLite). On a networked engine the read and the
 * broker subscription are not one step: a message committed after the read's
 * snapshot and published before the node subscribes reaches neither. The
 * client's per-thread seq gap-fill covers that window (it asks for history on
 * the next message's gap, or on its next sync); an engine that wants it closed
 * can subscribe before the last read and dedupe.
 */
export class InboxDrain {
  private afterId = 0;
  private count = 0;
  private overflow = false;
  private reading = false;
  private finished = false;
  private retry: Timer | undefined;
  private threadIds: readonly number[] = [];

  constructor(
    private readonly deviceId: number,
    private readonly deps: InboxDrainDeps,
  ) {}

  /** Sends what the socket takes now; call again when it has drained. One continuation at a time. */
  async continue(): Promise<void> {
    const { deps } = this;
    if (this.finished || this.reading || deps.isClosed()) return;
    const full = (): boolean => deps.bufferedAmount() > deps.maxBufferedBytes / 2;
    this.reading = true;
    try {
      for (;;) {
        if (full()) {
          this.retry ??= deps.clock.setTimeout(() => {
            this.retry = undefined;
            this.continue().catch((error: unknown) => this.deps.failed(error));
          }, DRAIN_RETRY_MS);
          return;
        }
        const page = await deps.delivery.inboxPage(this.deviceId, this.afterId, INBOX_PAGE);
        if (deps.isClosed()) return;
        this.overflow ||= page.overflowed;
        for (const message of page.messages) {
          if (full()) break;
          deps.sendText(messageEventText(message));
          this.afterId = message.id;
          this.count++;
        }
        if (deps.isClosed()) return;
        if (page.messages.length === 0) {
          this.threadIds = page.followedThreadIds;
          break;
        }
      }
    } catch (error) {
      this.finished = true;
      deps.failed(error);
      return;
    } finally {
      this.reading = false;
    }
    // The same continuation as the empty page's read: see above.
    this.finished = true;
    try {
      deps.done(this.count, this.overflow, this.threadIds);
    } catch (error) {
      deps.failed(error);
    }
  }

  /** The connection closed: no retry fires. */
  stop(): void {
    this.finished = true;
    if (this.retry) this.deps.clock.clearTimer(this.retry);
    this.retry = undefined;
  }
}
