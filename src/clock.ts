/** Time as a dependency, so rules that depend on it (rate limits, deadlines) are testable. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
