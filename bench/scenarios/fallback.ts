import type { Transport, WorkerReport } from '../lib/gen-protocol.js';
import { type Result, type Scenario, generatorBound } from '../lib/scenario.js';
import { startDeployment } from '../lib/deployment.js';
import { percentiles } from '../lib/stats.js';
import { measure, preparePairs, sum } from './direct.js';
import { measureIdle } from './idle.js';

const postedFrames = (reports: readonly WorkerReport[]): number => {
  const posts = reports.reduce((total, report) => total + (report.posts ?? 0), 0);
  return posts > 0 ? reports.reduce((total, report) => total + (report.postedFrames ?? 0), 0) / posts : Number.NaN;
};

const PAIRS = 200;
const WINDOW = 32;

/**
 * The same server settings for every transport. synchronous=normal, so that the figure shows what
 * the transport costs rather than the disk's flushes; the send limits out of the way, as in
 * direct-throughput.
 */
const SERVER_TOML = `
[storage]
synchronous = "normal"
[websocket]
frames_per_second = 100000
max_refused_frames = 100000
max_buffered_bytes = 268435456
`;

const TRANSPORTS: ReadonlyArray<{ readonly transport: Transport; readonly label: string }> = [
  { transport: 'websocket', label: 'WebSocket' },
  { transport: 'stream', label: 'stream (event stream + POST batches)' },
  { transport: 'poll', label: 'long poll (+ POST batches)' },
];

/**
 * The fallback transport (/v1/stream, docs/protocol.md "The stream transport") against the
 * WebSocket in one run, on the same server settings and the same generator: the direct pairs'
 * throughput on each (a fresh server each), then the idle devices' memory on each (a fresh server
 * each, so that one transport's freed memory does not flatter the next's).
 */
export const fallback: Scenario = {
  name: 'fallback',
  summary: `the stream transport's event stream and long poll against the WebSocket: direct pairs' msg/s (window ${WINDOW}) and idle RSS per device on each`,
  async run(context) {
    const results: Result[] = [];
    for (const { transport, label } of TRANSPORTS) {
      const server = await startDeployment(context, SERVER_TOML);
      try {
        const pairs = await preparePairs(server, context.quick ? 50 : PAIRS);
        const run = await measure(context, server, pairs, { kind: 'window', window: WINDOW }, context.quick ? 3 : 10, transport);
        const acked = sum(run.reports, 'acked') / run.seconds;
        const delivered = sum(run.reports, 'delivered') / run.seconds;
        const ack = percentiles(run.reports.flatMap((report) => report.ackLatencies));
        results.push({
          scenario: 'fallback',
          setting: `${label}: ${pairs.length} pairs × window ${WINDOW}, synchronous=normal`,
          figures: {
            'acked msg/s': acked,
            'delivered msg/s': delivered,
            'ack p50 ms': ack.p50,
            'ack p99 ms': ack.p99,
            errors: sum(run.reports, 'errors'),
            // The server's CPU per message acked: what the transport adds to each message, told apart from the load.
            'server cpu µs/msg': acked > 0 ? (run.serverCpu * 1e6) / acked : Number.NaN,
            'GC %': run.loop['GC %'] ?? Number.NaN,
            // Over the whole run, warm-up included: how many frames each POST up carried (senders' sends, receivers' delivered acks).
            ...(transport === 'websocket' ? {} : { 'frames/POST': postedFrames(run.reports) }),
          },
          serverCpu: run.serverCpu,
          generatorCpu: run.generatorCpu,
          valid: !generatorBound(run.serverCpu, run.generatorCpu),
        });
        context.log(`  ${label}: ${Math.round(acked)} acked/s, ${Math.round(delivered)} delivered/s`);
      } finally {
        await server.stop();
      }
    }
    for (const { transport, label } of TRANSPORTS) {
      const result = await measureIdle(context, { scenario: 'fallback', wanted: context.quick ? 2_000 : 20_000, transport, settingPrefix: `${label}: idle, ` });
      results.push(result);
      context.log(`  ${label}: ${result.figures['RSS per device KB']?.toFixed(2)} KB per idle device`);
    }
    return results;
  },
};
