/**
 * Time as a dependency, so rules that depend on it (rate limits, deadlines,
 * grace periods, retries) are testable: tests hand in a fake clock whose time
 * moves only when they say, and whose timers fire then.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Runs `run` once, `ms` from now. The timer never keeps the process alive (it is unref'd). */
  setTimeout(run: () => void, ms: number): Timer;
  /** Runs `run` every `ms`, until cleared. Never keeps the process alive. */
  setInterval(run: () => void, ms: number): Timer;
  /** Stops a timer of this clock; clearing one that fired or was cleared does nothing. */
  clearTimer(timer: Timer): void;
}

/** A timer of a Clock: a handle to clear it with, nothing more. */
export interface Timer {
  readonly [timerBrand]: true;
}
declare const timerBrand: unique symbol;

/** The real clock: Date.now and Node's timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (run, ms) => setTimeout(run, ms).unref() as unknown as Timer,
  setInterval: (run, ms) => setInterval(run, ms).unref() as unknown as Timer,
  clearTimer: (timer) => clearTimeout(timer as unknown as NodeJS.Timeout),
};
