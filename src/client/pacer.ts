/**
 * Where a write joins the queue: `urgent` (auth, heartbeats) before all, `again`
 * (a request the server refused for the rate, written again) before what was
 * never sent, `last` behind everything; in the order they came within each.
 */
export type QueuePlace = 'urgent' | 'again' | 'last';

const RANK: Record<QueuePlace, number> = { urgent: 0, again: 1, last: 2 };

/**
 * Keeps a connection's outgoing frames under the server's `frames_per_second`
 * (announced in `welcome`), so the server never has to refuse one: a token
 * bucket of one second's worth of frames. The server allows bursts of twice
 * the rate; staying at one second's worth leaves room for timer jitter.
 */
export class Pacer {
  private tokens: number;
  private refilledAt: number;
  private readonly queue: Array<{ readonly write: () => void; readonly rank: number }> = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private pausedUntil = 0;

  constructor(
    private perSecond: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = perSecond;
    this.refilledAt = now();
  }

  /** Runs `write` now if the rate allows, else when it does, in its place in the queue. */
  run(write: () => void, place: QueuePlace = 'last'): void {
    const rank = RANK[place];
    let at = this.queue.length;
    while (at > 0 && (this.queue[at - 1] as { rank: number }).rank > rank) at--;
    this.queue.splice(at, 0, { write, rank });
    this.drain();
  }

  /** The server refused a frame for the rate (`retry_after_ms`): send nothing until then. */
  pause(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, this.now() + ms);
    this.tokens = 0;
    this.drain();
  }

  setRate(perSecond: number): void {
    this.perSecond = perSecond;
    this.tokens = Math.min(this.tokens, perSecond);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
  }

  private drain(): void {
    if (this.timer) return;
    const now = this.now();
    if (now >= this.pausedUntil) {
      this.tokens = Math.min(this.perSecond, this.tokens + ((now - this.refilledAt) * this.perSecond) / 1000);
      this.refilledAt = now;
      while (this.queue.length > 0 && this.tokens >= 1) {
        this.tokens -= 1;
        this.queue.shift()?.write();
      }
    } else {
      this.refilledAt = now;
    }
    if (this.queue.length === 0) return;
    const wait = Math.max(this.pausedUntil - now, Math.ceil(((1 - this.tokens) * 1000) / this.perSecond), 1);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.drain();
    }, wait);
  }
}
