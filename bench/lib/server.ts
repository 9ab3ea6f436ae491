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

/** What every bench server gets: open registration, cheap argon2, no login limits, no frame-rate limit (one process plays many devices). */
const BASE_CONFIG = `
[accounts]
registration = "open"
[rate_limit]
login_per_username = 100000
login_per_address = 100000
`;

export interface BenchServer {
  readonly process: ServerProcess;
  readonly dataDir: string;
  /** Server CPU ms and wall ms since `mark`, as a share of one core (1 = one core saturated). */
  cpuShareSince(mark: CpuMark): number;
  mark(): CpuMark;
  rssBytes(): number;
  stop(): Promise<void>;
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
  options: { dataDir?: string } = {},
): Promise<BenchServer> {
  const { placement, profileDir, serverNodeFlags } = context;
  const dir = tempDir('chatd-bench-');
  const dataDir = options.dataDir ?? join(dir, 'data');
  // --profile: V8 writes a .cpuprofile of the server when it exits (open it in Chrome DevTools or speedscope).
  const node = [process.execPath, ...serverNodeFlags, ...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []), CHATD_BIN];
  const command = placement.serverCores ? ['taskset', '-c', placement.serverCores, ...node] : node;
  const server = await startServer(['--data', dataDir, '--transport', 'uws', '--log-level', 'warn', '--config', writeConfig(dir, `${BASE_CONFIG}\n${toml}`)], { command });
  const pid = server.process.pid as number;
  return {
    process: server,
    dataDir,
    mark: () => ({ cpuMs: processCpuMs(pid), at: performance.now() }),
    cpuShareSince: (mark) => (processCpuMs(pid) - mark.cpuMs) / (performance.now() - mark.at),
    rssBytes: () => processRssBytes(pid),
    stop: async () => {
      await server.stop();
    },
  };
}
