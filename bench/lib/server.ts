import { join } from 'node:path';
import { type ServerProcess, CHATD_BIN, startServer } from '../../test/helpers/processes.js';
import { tempDir, writeConfig } from '../../test/helpers/tmp.js';
import { type Placement, processCpuMs, processRssBytes } from './machine.js';

/**
 * The Node.js flags the Docker image runs `chatd serve` with (its NODE_OPTIONS):
 * 64 MB semi-spaces, a larger young generation. Under load every send keeps a few objects alive
 * until its commit; with V8's default (16 MB) the scavenger copies them again
 * and again and promotes them, and garbage collection took a fifth of the
 * server's time (docs/performance.md, "Memory and garbage collection").
 */
export const DOCKER_NODE_FLAGS = ['--max-semi-space-size=64'];

/** What every bench server gets: open registration, cheap argon2, no login limits, no limits per address or user (one process plays many devices, from one address). */
const BASE_CONFIG = `
[accounts]
registration = "open"
[rate_limit]
login_per_username = 100000
login_per_address = 100000
[limits]
connections_per_address_per_minute = 1000000
auth_per_address_per_minute = 1000000
auth_per_user_per_minute = 1000000
auth_per_device_per_minute = 1000000
max_unauthenticated = 10000000
max_unauthenticated_per_address = 10000000
max_connections_per_user = 1000000
max_connections_per_device = 1000000
user_sends_per_second = 1000000
[metrics]
enabled = true
`;

export interface BenchServer {
  readonly process: ServerProcess;
  readonly dataDir: string;
  /** Server CPU ms and wall ms since `mark`, as a share of one core (1 = one core saturated). */
  cpuShareSince(mark: CpuMark): number;
  mark(): CpuMark;
  rssBytes(): number;
  /** The server's own counters (GET /metrics): where its event loop's time went. */
  metrics(): Promise<ServerMetrics>;
  stop(): Promise<void>;
}

export interface ServerMetrics {
  readonly at: number;
  readonly transactions: number;
  readonly writes: number;
  readonly transactionSeconds: number;
  readonly gcSeconds: number;
  /** Round trips to the storage (PostgreSQL) and to the bus (Redis) since the start; 0 for engines inside the process. */
  readonly storageRoundTrips: number;
  readonly busRoundTrips: number;
  /** The event-loop delay histogram: cumulative counts by upper bound in seconds, the last one Infinity. */
  readonly delay: ReadonlyArray<readonly [number, number]>;
}

async function scrapeMetrics(url: string): Promise<ServerMetrics> {
  const response = await fetch(`${url}/metrics`);
  if (!response.ok) throw new Error(`GET /metrics: ${response.status}`);
  const samples = new Map<string, number>();
  for (const line of (await response.text()).split('\n')) {
    const [name, value] = line.split(' ');
    if (name && value && !line.startsWith('#')) samples.set(name, Number(value));
  }
  const delay = [...samples]
    .filter(([name]) => name.startsWith('chatd_event_loop_delay_seconds_bucket'))
    .map(([name, count]) => [Number(/le="([^"]+)"/.exec(name)?.[1]), count] as const);
  return {
    at: performance.now(),
    transactions: samples.get('chatd_write_transactions_total') ?? 0,
    writes: samples.get('chatd_writes_total') ?? 0,
    transactionSeconds: samples.get('chatd_write_transaction_seconds_total') ?? 0,
    gcSeconds: samples.get('chatd_gc_seconds_total') ?? 0,
    storageRoundTrips: [...samples].find(([name]) => name.startsWith('chatd_engine_round_trips_total{role="storage"'))?.[1] ?? 0,
    busRoundTrips: [...samples].find(([name]) => name.startsWith('chatd_engine_round_trips_total{role="bus"'))?.[1] ?? 0,
    delay,
  };
}

/**
 * What the server's event loop did between two scrapes, as table figures: the
 * share of its time in write transactions and in garbage collection, writes
 * per transaction, and the event-loop delay's 99th percentile (interpolated
 * within its histogram bucket, as Prometheus' histogram_quantile does).
 */
export function loopFigures(from: ServerMetrics, to: ServerMetrics): Record<string, number> {
  const seconds = (to.at - from.at) / 1000;
  const transactions = to.transactions - from.transactions;
  const counts = to.delay.map(([bound, count], index) => [bound, count - (from.delay[index]?.[1] ?? 0)] as const);
  const total = counts.at(-1)?.[1] ?? 0;
  let p99 = Number.NaN;
  for (let index = 0; index < counts.length && total > 0; index++) {
    const [bound, count] = counts[index] as readonly [number, number];
    if (count < 0.99 * total) continue;
    const [lower, below] = index === 0 ? [0, 0] : (counts[index - 1] as readonly [number, number]);
    // Past the last finite bound there is nothing to interpolate towards: report that bound.
    p99 = Number.isFinite(bound) ? lower + ((bound - lower) * (0.99 * total - below)) / Math.max(1, count - below) : lower;
    break;
  }
  return {
    'in commits %': (to.transactionSeconds - from.transactionSeconds) / seconds,
    'writes/commit': transactions > 0 ? (to.writes - from.writes) / transactions : Number.NaN,
    'GC %': (to.gcSeconds - from.gcSeconds) / seconds,
    'loop delay p99 ms': p99 * 1000,
  };
}

export interface CpuMark {
  readonly cpuMs: number;
  readonly at: number;
}

/**
 * Starts `chatd serve` (the built bin/chatd) on a free port with a fresh data
 * directory, pinned to the server's core when the machine allows it.
 */
export async function startBenchServer(
  context: { readonly placement: Placement; readonly profileDir: string | undefined; readonly serverNodeFlags: readonly string[] },
  toml: string,
  options: { dataDir?: string; /** Environment for the server (the engines' URLs: CHATD_STORAGE_URL, CHATD_BUS_URL). */ env?: Record<string, string> } = {},
): Promise<BenchServer> {
  const { placement, profileDir, serverNodeFlags } = context;
  const dir = tempDir('chatd-bench-');
  const dataDir = options.dataDir ?? join(dir, 'data');
  // --profile: V8 writes a .cpuprofile of the server when it exits (open it in Chrome DevTools or speedscope).
  const node = [process.execPath, ...serverNodeFlags, ...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []), CHATD_BIN];
  const command = placement.serverCores ? ['taskset', '-c', placement.serverCores, ...node] : node;
  const server = await startServer(['--data', dataDir, '--transport', 'uws', '--log-level', 'warn', '--config', writeConfig(dir, `${BASE_CONFIG}\n${toml}`)], { command, ...(options.env ? { env: options.env } : {}) });
  const pid = server.process.pid as number;
  return {
    process: server,
    dataDir,
    mark: () => ({ cpuMs: processCpuMs(pid), at: performance.now() }),
    cpuShareSince: (mark) => (processCpuMs(pid) - mark.cpuMs) / (performance.now() - mark.at),
    rssBytes: () => processRssBytes(pid),
    metrics: () => scrapeMetrics(server.url),
    stop: async () => {
      await server.stop();
    },
  };
}
