/**
 * Keeps a connection's outgoing frames under the server's `frames_per_second`
 * (announced in `welcome`), so the server never has to refuse one: a token
 * bucket of one second's worth of frames. The server allows bursts of twice
 * the rate; staying at one second's worth leaves room for timer jitter.
 */
export class Pacer {
  private tokens: number;
  private refilledAt: number;
  private readonly queue: Array<() => void> = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private pausedUntil = 0;

  constructor(
    private perSecond: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = perSecond;
    this.refilledAt = now();
  }

  /** Runs `write` now if the rate allows, else when it does; `urgent` writes go first. */
  run(write: () => void, urgent = false): void {
    if (urgent) this.queue.unshift(write);
    else this.queue.push(write);
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
        this.queue.shift()?.();
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
