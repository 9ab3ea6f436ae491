/** Round-trip times to an engine (PostgreSQL, Redis), kept for /metrics: the most recent samples only. */
export interface LatencySummary {
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Samples taken since the start. */
  readonly count: number;
}

/** A ring of the last `size` samples; quantiles are computed when asked (a scrape), not per sample. */
export class LatencyWindow {
  private readonly samples: Float64Array;
  private next = 0;
  private taken = 0;

  constructor(size = 1024) {
    this.samples = new Float64Array(size);
  }

  record(ms: number): void {
    this.samples[this.next] = ms;
    this.next = (this.next + 1) % this.samples.length;
    this.taken++;
  }

  /** Undefined until the first sample. */
  summary(): LatencySummary | undefined {
    const n = Math.min(this.taken, this.samples.length);
    if (n === 0) return undefined;
    const sorted = Array.from(this.samples.subarray(0, n)).sort((a, b) => a - b);
    const at = (q: number): number => sorted[Math.min(n - 1, Math.floor(q * n))] as number;
    return { p50Ms: at(0.5), p99Ms: at(0.99), count: this.taken };
  }
}
