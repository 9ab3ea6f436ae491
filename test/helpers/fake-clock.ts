import type { Clock, Timer } from '../../src/clock.js';

interface Scheduled {
  readonly id: number;
  at: number;
  readonly every: number | undefined;
  readonly run: () => void;
}

/**
 * A Clock whose time moves only when the test says so. `advance(ms)` fires the
 * timers that come due, in time order (each seeing `now()` at its own due
 * time), including timers they schedule within the span.
 */
export class FakeClock implements Clock {
  private current: number;
  private nextId = 1;
  private readonly timers = new Map<number, Scheduled>();
  private waiters: Array<() => void> = [];

  constructor(start = 1_000_000) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  /** The time; setting it forward is `advance` (timers due on the way fire), setting it back just sets it. */
  get time(): number {
    return this.current;
  }

  set time(value: number) {
    if (value >= this.current) this.advance(value - this.current);
    else this.current = value;
  }

  setTimeout(run: () => void, ms: number): Timer {
    return this.schedule(run, ms, undefined);
  }

  setInterval(run: () => void, ms: number): Timer {
    return this.schedule(run, ms, Math.max(1, ms));
  }

  clearTimer(timer: Timer): void {
    this.timers.delete(timer as unknown as number);
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.timers.size;
  }

  /**
   * Resolves once a timer waits to fire (at once if one does): for code that sets its timer after database round
   * trips, which no count of event-loop turns bounds.
   */
  timerWaiting(): Promise<void> {
    if (this.timers.size > 0) return Promise.resolve();
    return new Promise((done) => this.waiters.push(done));
  }

  /** Moves time forward by `ms`, firing what comes due on the way. */
  advance(ms: number): void {
    const until = this.current + ms;
    for (;;) {
      const due = [...this.timers.values()].filter((timer) => timer.at <= until).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.current = Math.max(this.current, due.at);
      if (due.every === undefined) this.timers.delete(due.id);
      else due.at += due.every;
      due.run();
    }
    this.current = until;
  }

  /** Sets the time without firing anything (for a clock that jumps, e.g. a test of deadlines). */
  set(time: number): void {
    this.current = time;
  }

  private schedule(run: () => void, ms: number, every: number | undefined): Timer {
    const id = this.nextId++;
    this.timers.set(id, { id, at: this.current + Math.max(0, ms), every, run });
    const waiting = this.waiters;
    this.waiters = [];
    for (const done of waiting) done();
    return id as unknown as Timer;
  }
}
