import { connectAuthenticated } from '../../test/helpers/ws.js';
import { type Device, createDevices, inParallel } from '../lib/accounts.js';
import type { Transport } from '../lib/gen-protocol.js';
import { Generator, split } from '../lib/generator.js';
import { fileLimit, ownCpuMs } from '../lib/machine.js';
import { type Context, type Result, type Scenario, generatorBound } from '../lib/scenario.js';
import { startBenchServer } from '../lib/server.js';

const HEARTBEAT_MS = 25_000;
/** RSS is read this long after the last device connected, and again at the end of the quiet window. */
const SETTLE_MS = 3000;

/** Device 2i opens a direct thread with device 2i+1 (over the WebSocket, as a client does), before anything is measured. */
async function pairUp(wsUrl: string, devices: readonly Device[]): Promise<number> {
  const pairs = Math.floor(devices.length / 2);
  await inParallel(pairs, 16, async (index) => {
    const { socket } = await connectAuthenticated(wsUrl, (devices[2 * index] as Device).token);
    await socket.expect({ type: 'direct_open', user_id: (devices[2 * index + 1] as Device).userId }, 'thread');
    socket.close();
  });
  return pairs;
}

/**
 * Opens up to `wanted` authenticated devices on `transport` against a fresh server (with `toml`),
 * lets them idle with heartbeats, and measures the server's RSS per device and heartbeat CPU.
 * `pairs`: the devices (one user each) are paired up in direct threads first, so that every
 * connection also follows a thread (the shape of a real user, not an empty account).
 */
export async function measureIdle(
  context: Context,
  options: { scenario: string; wanted: number; transport: Transport; toml?: string; settingPrefix?: string; pairs?: boolean },
): Promise<Result> {
  // Each side holds one socket per device (the stream: plus a few kept-alive POST connections per
  // generator thread): both processes must stay under the open-file limit.
  const limit = fileLimit();
  const count = Math.min(options.wanted, limit - (options.transport === 'websocket' ? 300 : 300 + 16 * context.workers));
  const server = await startBenchServer(context, `[websocket]\nheartbeat_interval_ms = ${HEARTBEAT_MS}\nheartbeat_timeout_ms = ${HEARTBEAT_MS * 3}\n${options.toml ?? ''}`);
  try {
    const devices = await createDevices(server.process.url, 'idle', count, (done) => context.log(`  ${done} devices`));
    const threads = options.pairs ? await pairUp(server.process.wsUrl, devices) : 0;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const before = server.rssBytes();
    const generator = await Generator.prepare(
      split(devices.map((device) => device.token), context.workers).map((tokens, worker) => ({
        kind: 'idle' as const,
        worker,
        wsUrl: server.process.wsUrl,
        tokens,
        heartbeatMs: HEARTBEAT_MS,
        transport: options.transport,
      })),
    );
    const startedAt = performance.now();
    generator.start();
    // Every device is connected and through its inbox (prepare waits for that). Read after a few
    // seconds, nothing forced: what the young generation grew to while they connected is in it.
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    const after = server.rssBytes();
    const mark = server.mark();
    const ownMark = ownCpuMs();
    const seconds = context.quick ? 5 : 20;
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    const serverCpu = server.cpuShareSince(mark);
    // Again at the end of the quiet window (heartbeats only): V8 may have given back young-generation pages by then.
    const settled = server.rssBytes();
    const generatorCpu = (ownCpuMs() - ownMark) / (seconds * 1000) / context.placement.generatorCoreCount;
    const reports = await generator.stop();
    const connected = reports.reduce((total, report) => total + report.delivered, 0);
    // Counted, not assumed: the pongs that came back during the measured window (pings are spread over the interval).
    const heartbeatsPerSecond = reports.reduce((total, report) => total + report.acked, 0) / ((performance.now() - startedAt) / 1000);
    return {
      scenario: options.scenario,
      setting: `${options.settingPrefix ?? ''}${connected.toLocaleString('en-US')} devices${threads > 0 ? ` in ${threads.toLocaleString('en-US')} direct threads` : ''}${count < options.wanted ? ` (open-file limit ${limit} on each side)` : ''}, heartbeat every ${HEARTBEAT_MS / 1000} s`,
      figures: {
        'RSS per device KB': (after - before) / connected / 1024,
        [`RSS per device after ${seconds} s idle KB`]: (settled - before) / connected / 1024,
        'server RSS MB': after / 2 ** 20,
        'heartbeats/s': heartbeatsPerSecond,
        'cpu per 1k heartbeats ms': ((serverCpu * 1000) / heartbeatsPerSecond) * 1000,
      },
      serverCpu,
      generatorCpu,
      valid: !generatorBound(serverCpu, generatorCpu),
    };
  } finally {
    await server.stop();
  }
}

export const idleConnections: Scenario = {
  name: 'idle-connections',
  summary: 'up to 20,000 authenticated idle devices sending heartbeats, then 5,000 in direct pairs: server RSS per connection, heartbeat CPU',
  async run(context) {
    return [
      await measureIdle(context, { scenario: 'idle-connections', wanted: context.quick ? 2_000 : 20_000, transport: 'websocket' }),
      // The comparison run's shape: every device a user with one direct thread, all of them online.
      await measureIdle(context, { scenario: 'idle-connections', wanted: context.quick ? 1_000 : 5_000, transport: 'websocket', pairs: true }),
    ];
  },
};
