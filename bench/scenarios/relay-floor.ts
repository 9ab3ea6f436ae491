import type { Window } from '../lib/deployment.js';
import { processCpuMs } from '../lib/machine.js';
import { type Context, type Result, generatorBound } from '../lib/scenario.js';
import { percentiles } from '../lib/stats.js';
import { COST_RATES, PAIRS, type Pair, WINDOW, cpuPerMessage, measure, sum } from './direct.js';
import { type PinnedListener, startPinnedListener } from '../lib/pinned.js';

/** The pairs as the relay knows them: thread n's sender and receiver (bench/lib/relay-child.ts). */
const relayPairs = (count: number): Pair[] => Array.from({ length: count }, (_, n) => ({ senderToken: `s:${n}`, receiverToken: `r:${n}`, threadId: n }));

/** The relay as `measure` sees a server: its URL, its process's CPU time. */
function measured(relay: PinnedListener): Parameters<typeof measure<{ cpuMs: number; at: number }>>[1] {
  const pid = relay.child.pid as number;
  return {
    nodes: [{ process: { wsUrl: relay.url } }],
    mark: async () => ({ cpuMs: processCpuMs(pid), at: performance.now() }),
    since: async (mark): Promise<Window> => ({
      serverCpu: (processCpuMs(pid) - mark.cpuMs) / (performance.now() - mark.at),
      figures: {},
      perMessage: () => ({}),
    }),
  };
}

/**
 * The relay floor (issue 23, item 2): the direct pairs, as direct-latency
 * drives chatd (200 pairs, receivers acking every 200 messages), against a
 * server that does chatd's network work and nothing else, at the same fixed
 * rates and at saturation. At a fixed rate a message is its own socket read
 * and writes and its own event-loop turn, whatever the server stores; this is
 * what a message costs there before any storage: the network's share of
 * chatd's cost at each rate, which no commit policy changes.
 */
export async function relayFloor(context: Context): Promise<Result[]> {
  const relay = await startPinnedListener(context, './relay-child.ts', [], 'the relay floor');
  try {
    const server = measured(relay);
    const pairs = relayPairs(context.quick ? 50 : PAIRS);
    // Issue 23's rates, and half of chatd's maximum of this invocation (direct-throughput), where direct-latency
    // measures the p99 item 4 asks about: the relay's tail at that rate is what the generator and the machine add.
    const maximum = context.earlier.get('direct-throughput')?.[0]?.figures['acked msg/s'];
    const rates = [...new Set([...COST_RATES, ...(maximum ? [Math.round(maximum * 0.5)] : [])])].sort((a, b) => a - b);
    const modes = [...rates.map((rate) => ({ kind: 'rate' as const, perSecond: rate })), { kind: 'window' as const, window: WINDOW }];
    const results: Result[] = [];
    for (const mode of modes) {
      const run = await measure(context, server, pairs, mode, context.quick ? 3 : 8);
      const acked = sum(run.reports, 'acked') / run.seconds;
      const deliver = percentiles(run.reports.flatMap((report) => report.deliverLatencies));
      results.push({
        scenario: 'ceilings',
        setting: `relay floor (bare uWS, chatd's direct frames as JSON, no storage), ${pairs.length} pairs, ${mode.kind === 'rate' ? `${mode.perSecond.toLocaleString('en-US')} msg/s offered` : `saturated (window ${mode.window})`}`,
        figures: { 'acked msg/s': acked, 'deliver p50 ms': deliver.p50, 'deliver p99 ms': deliver.p99, 'server cpu µs/msg': cpuPerMessage(run.serverCpu, acked), errors: sum(run.reports, 'errors') },
        serverCpu: run.serverCpu,
        generatorCpu: run.generatorCpu,
        valid: !generatorBound(run.serverCpu, run.generatorCpu),
        ...(mode.kind === 'window' && generatorBound(run.serverCpu, run.generatorCpu) ? { note: 'the generator saturated first: the saturated cost per message is an upper bound' } : {}),
      });
    }
    return results;
  } finally {
    relay.child.kill('SIGKILL');
  }
}

/**
 * chatd against the relay floor, rate by rate, from this invocation's
 * direct-latency (receivers acking every 200 messages) and direct-throughput
 * rows: what chatd's own work (storage, services) costs per message beyond
 * the network's, and that part's ratio to its cost at saturation.
 */
export function relayComparison(context: Context, relay: readonly Result[]): Result[] {
  const cost = (rows: readonly Result[] | undefined, match: (setting: string) => boolean): number | undefined =>
    rows?.find((row) => match(row.setting))?.figures['server cpu µs/msg'];
  const relayCost = (label: string): number | undefined => cost(relay, (setting) => setting.endsWith(`, ${label}`));
  const chatdSaturated = cost(context.earlier.get('direct-throughput'), (setting) => setting.startsWith('synchronous=full') && !setting.includes('receivers'));
  const relaySaturated = relayCost(`saturated (window ${WINDOW})`);
  if (chatdSaturated === undefined || relaySaturated === undefined) return [];
  return COST_RATES.flatMap((rate) => {
    const label = `${rate.toLocaleString('en-US')} msg/s offered`;
    const chatd = cost(context.earlier.get('direct-latency'), (setting) => setting.startsWith(label) && !setting.includes('receivers'));
    const floor = relayCost(label);
    if (chatd === undefined || floor === undefined) return [];
    return [{
      scenario: 'ceilings',
      setting: `chatd (direct-latency, synchronous=full) vs the relay floor at ${label}`,
      figures: {
        'chatd µs/msg': chatd,
        'relay µs/msg': floor,
        'chatd vs its saturation ×': chatd / chatdSaturated,
        'relay vs its saturation ×': floor / relaySaturated,
        'chatd minus relay µs/msg': chatd - floor,
        'chatd minus relay vs saturation ×': (chatd - floor) / (chatdSaturated - relaySaturated),
      },
      serverCpu: Number.NaN,
      generatorCpu: Number.NaN,
      valid: true,
    }];
  });
}
