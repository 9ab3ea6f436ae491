import { PerformanceObserver, monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { WriteTotals } from './storage/write-batcher.js';

/**
 * What an operator needs to see whether the one process keeps up, in
 * Prometheus' text format (GET /metrics when `metrics.enabled`): how late the
 * event loop runs, how much of it the database's write transactions take,
 * garbage collection, connections, CPU and memory. Everything that holds up
 * the event loop delays every frame on every connection, so the event-loop
 * delay is the figure to alert on; the other counters say why it grew.
 */

export interface MetricSources {
  writes(): WriteTotals;
  connections(): number;
  /** The storage and bus engines, pinged now (src/app/engines.ts). */
  engines(): Promise<readonly EngineSample[]>;
  /** Whether each configured push provider is paused on this node (it refuses this server: docs/push.md, "The pause"). */
  pushProviders?(): ReadonlyMap<string, { readonly paused: boolean }>;
}

/** One engine's state as the composition root reports it. */
export interface EngineSample {
  readonly role: string;
  readonly engine: string;
  readonly ok: boolean;
  /** Recent round trips in milliseconds (count: all timed since the start); undefined for an engine inside the process (SQLite, memory). */
  readonly latency: { readonly p50Ms: number; readonly p99Ms: number; readonly count: number } | undefined;
}

/** How often the event loop is asked to run a timer; its lateness is the delay every frame waits. */
const DELAY_SAMPLE_MS = 10;
/** Upper bounds of the delay histogram, in seconds. */
const DELAY_BUCKETS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5] as const;

/** The part of a histogram of intervals that the bucket counts read (node's IntervalHistogram has it). */
export interface IntervalCounts {
  readonly count: number;
  readonly min: number;
  readonly max: number;
  readonly mean: number;
  percentile(percentile: number): number;
}

/** A histogram of intervals whose window can be started again (node's IntervalHistogram and RecordableHistogram). */
export interface IntervalWindow extends IntervalCounts {
  reset(): void;
}

/** The delay histogram in Prometheus' terms: cumulative counts per bound, the count of all runs, the sum of their delays in seconds. */
export interface DelayCounts {
  readonly cumulative: number[];
  readonly count: number;
  readonly sum: number;
}

/**
 * The delay histogram from libuv's: `intervals` holds the nanoseconds between runs of a timer due every
 * `resolutionMs`, so a run's delay is what its interval took past that (an idle loop records about the
 * resolution itself). Returns the cumulative count of runs whose delay was at most each bound (in seconds),
 * then the count of all runs and the sum of their delays in seconds. A count is found by bisecting the
 * percentiles, so it is as exact as the histogram's values (three significant digits): a run within 0.1% of a
 * bound may be counted on either side of it. The bisection stops once its interval is narrower than a quarter
 * of one run (about log2(count) + 3 steps), so a bound costs few `percentile` calls and none when every run
 * is on one side of it.
 */
export function delayHistogram(intervals: IntervalCounts, resolutionMs: number, bounds: readonly number[]): DelayCounts {
  const count = intervals.count;
  if (count === 0) return { cumulative: bounds.map(() => 0), count: 0, sum: 0 };
  const resolutionNs = resolutionMs * 1e6;
  const cumulative = bounds.map((bound) => {
    const limit = resolutionNs + bound * 1e9;
    if (intervals.max <= limit) return count;
    if (intervals.min > limit) return 0;
    // The bound lies at percentile k/count * 100 for the k runs at most it; once the interval is under a
    // quarter of a run wide, rounding `below` gives k. The step cap only guards against a histogram that lies.
    let below = 0;
    let above = 100;
    for (let step = 0; step < 64 && (above - below) * count >= 25; step += 1) {
      const middle = (below + above) / 2;
      if (intervals.percentile(middle) <= limit) below = middle;
      else above = middle;
    }
    return Math.round((count * below) / 100);
  });
  const sum = Math.max(0, (intervals.mean - resolutionNs) * count) / 1e9;
  return { cumulative, count, sum };
}

/**
 * The delay histogram since the start, from windows of libuv's: each `take` reads the window, starts a new
 * one (so the `max`/`min` shortcuts see only the runs since the last scrape, not one slow tick from hours
 * ago), and adds it to the totals, which only grow (Prometheus counters).
 */
export class DelayTotals {
  private readonly cumulative: number[];
  private count = 0;
  private sum = 0;

  constructor(
    private readonly resolutionMs: number,
    private readonly bounds: readonly number[],
  ) {
    this.cumulative = bounds.map(() => 0);
  }

  /** Reads and resets `intervals`; returns the totals with its window added. */
  take(intervals: IntervalWindow): DelayCounts {
    const window = delayHistogram(intervals, this.resolutionMs, this.bounds);
    intervals.reset();
    window.cumulative.forEach((runs, index) => {
      this.cumulative[index] = (this.cumulative[index] as number) + runs;
    });
    this.count += window.count;
    this.sum += window.sum;
    return { cumulative: [...this.cumulative], count: this.count, sum: this.sum };
  }
}

export class RuntimeMetrics {
  private gcSeconds = 0;
  /** Sampled by a libuv timer, not a JS one: no JS runs for it between scrapes (a 10 ms JS timer was 100 wake-ups of JS a second, 1–2% of a quiet server's CPU). */
  private readonly delay: IntervalHistogram;
  private readonly delayTotals = new DelayTotals(DELAY_SAMPLE_MS, DELAY_BUCKETS);
  private readonly gc: PerformanceObserver;

  constructor(private readonly sources: MetricSources) {
    this.delay = monitorEventLoopDelay({ resolution: DELAY_SAMPLE_MS });
    this.delay.enable();
    this.gc = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) this.gcSeconds += entry.duration / 1000;
    });
    this.gc.observe({ entryTypes: ['gc'] });
  }

  stop(): void {
    this.delay.disable();
    this.gc.disconnect();
  }

  /** The exposition text: one family per metric, HELP and TYPE lines first. Pings the engines (each bounded in time). */
  async render(): Promise<string> {
    const engines = await this.sources.engines();
    const writes = this.sources.writes();
    const cpu = process.cpuUsage();
    const memory = process.memoryUsage();
    const lines: string[] = [];
    const family = (name: string, type: 'counter' | 'gauge' | 'histogram', help: string, samples: Array<[string, number]>): void => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [suffix, value] of samples) lines.push(`${name}${suffix} ${value}`);
    };
    const delay = this.delayTotals.take(this.delay);
    const buckets: Array<[string, number]> = DELAY_BUCKETS.map((bound, index) => [`_bucket{le="${bound}"}`, delay.cumulative[index] as number]);
    family(
      'chatd_event_loop_delay_seconds',
      'histogram',
      `How late the event loop ran a timer due every ${DELAY_SAMPLE_MS} ms: what every frame and request waited besides its own work.`,
      [...buckets, ['_bucket{le="+Inf"}', delay.count], ['_sum', delay.sum], ['_count', delay.count]],
    );
    family('chatd_write_transactions_total', 'counter', 'Write transactions (group commits) run.', [['', writes.transactions]]);
    family('chatd_writes_total', 'counter', 'Writes (sends, acknowledgements, …) run in those transactions.', [['', writes.writes]]);
    family('chatd_write_transaction_seconds_total', 'counter', 'Time the event loop spent in write transactions: statements, commit and fsync.', [
      ['', writes.seconds],
    ]);
    family('chatd_gc_seconds_total', 'counter', 'Time spent in garbage collection pauses.', [['', this.gcSeconds]]);
    family('chatd_websocket_connections', 'gauge', 'Open WebSocket connections.', [['', this.sources.connections()]]);
    const engine = (state: EngineSample): string => `role="${state.role}",engine="${state.engine}"`;
    family(
      'chatd_engine_up',
      'gauge',
      'Whether the engine (role: storage or bus) answered a ping when this page was made: 1 yes, 0 no.',
      engines.map((state) => [`{${engine(state)}}`, state.ok ? 1 : 0]),
    );
    const measured = engines.filter((state) => state.latency !== undefined);
    family(
      'chatd_engine_latency_seconds',
      'gauge',
      "Round trips to a networked engine (PostgreSQL, Redis) over its recent window, by quantile. Engines inside the process (SQLite, memory) have none.",
      measured.flatMap((state) => [
        [`{${engine(state)},quantile="0.5"}`, (state.latency?.p50Ms ?? 0) / 1000],
        [`{${engine(state)},quantile="0.99"}`, (state.latency?.p99Ms ?? 0) / 1000],
      ]),
    );
    family(
      'chatd_engine_round_trips_total',
      'counter',
      'Round trips timed since the start (chatd_engine_latency_seconds is computed over the most recent of them).',
      measured.map((state) => [`{${engine(state)}}`, state.latency?.count ?? 0]),
    );
    const providers = [...(this.sources.pushProviders?.() ?? new Map<string, { paused: boolean }>())];
    family(
      'chatd_push_provider_paused',
      'gauge',
      'Whether the push provider is paused on this node because it refuses this server whatever the device (1): its notifications wait, the log says what to check.',
      providers.map(([platform, state]) => [`{platform="${platform}"}`, state.paused ? 1 : 0]),
    );
    family('process_cpu_seconds_total', 'counter', 'User and system CPU time of the process.', [['', (cpu.user + cpu.system) / 1e6]]);
    family('process_resident_memory_bytes', 'gauge', 'Resident set size.', [['', memory.rss]]);
    family('nodejs_heap_used_bytes', 'gauge', 'V8 heap in use.', [['', memory.heapUsed]]);
    return `${lines.join('\n')}\n`;
  }
}
