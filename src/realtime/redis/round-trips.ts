/** Percentiles of recent round trips, in milliseconds, for /metrics (`count`: how many they were computed from). */
export interface LatencySummary {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly count: number;
}

/**
 * The last `capacity` round trips to an engine, in a ring: recording is one
 * array write (publishes record every time), the percentiles are computed
 * only when asked (a scrape).
 */
export class RoundTrips {
  private readonly samples: Float64Array;
  private recorded = 0;

  constructor(capacity = 1024) {
    this.samples = new Float64Array(capacity);
  }

  record(ms: number): void {
    this.samples[this.recorded % this.samples.length] = ms;
    this.recorded++;
  }

  /** Undefined until a round trip was recorded. */
  summary(): LatencySummary | undefined {
    const count = Math.min(this.recorded, this.samples.length);
    if (count === 0) return undefined;
    const sorted = this.samples.slice(0, count).sort();
    return { p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99), count };
  }
}

/** Nearest rank of a sorted, non-empty sample. */
function percentile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0;
}
