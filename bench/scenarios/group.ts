import { connectAuthenticated } from '../../test/helpers/ws.js';
import { createDevices } from '../lib/accounts.js';
import { Generator, split } from '../lib/generator.js';
import { ownCpuMs } from '../lib/machine.js';
import { type Context, type Result, type Scenario, generatorBound } from '../lib/scenario.js';
import { describeDeployment, startDeployment } from '../lib/deployment.js';
import type { BenchServer } from '../lib/server.js';
import { percentiles } from '../lib/stats.js';

const TOML = `
[websocket]
frames_per_second = 100000
max_refused_frames = 100000
max_buffered_bytes = 268435456
[messages]
max_group_members = 1000
`;

export interface Shape {
  readonly groups: number;
  readonly members: number;
  readonly sendersPerGroup: number;
  readonly window: number;
  /** Every member device acks `delivered` as the SDK does (see GenTask `acks`). */
  readonly acks?: boolean;
}

export const groupFanout: Scenario = {
  name: 'group-fanout',
  summary: 'one group of 1,000 members all online, 4 senders keeping 4 and then 16 messages in flight; and 100 groups of 50, one sender each: deliveries/s, send→last delivery',
  anyDeployment: true,
  async run(context) {
    const shapes: Shape[] = context.quick
      ? [{ groups: 1, members: 200, sendersPerGroup: 4, window: 4 }, { groups: 10, members: 50, sendersPerGroup: 1, window: 4 }]
      : [
          // A window of 4 per sender measures the delay at a moderate rate; 16 the rate: with more in
          // flight each socket read holds more frames, and one generator core can take in what the server sends.
          { groups: 1, members: 1000, sendersPerGroup: 4, window: 4 },
          { groups: 1, members: 1000, sendersPerGroup: 4, window: 16 },
          { groups: 100, members: 50, sendersPerGroup: 1, window: 4 },
        ];
    const results: Result[] = [];
    for (const shape of shapes) results.push(await measureGroup(context, 'group-fanout', shape));
    return results;
  },
};

/** One shape on a fresh server: its groups made, every member online, the senders keeping `window` messages in flight. */
export async function measureGroup(context: Context, scenario: string, shape: Shape): Promise<Result> {
  const deployment = await startDeployment(context, TOML);
  const nodes = deployment.nodes;
  const server = nodes[0] as BenchServer;
  try {
    const devices = await createDevices(server.process.url, 'm', shape.groups * shape.members, (done) => context.log(`  ${done} users`));
    const members: Array<{ token: string; threadId: number; senderIndex?: number }> = [];
    for (let g = 0; g < shape.groups; g++) {
      const group = devices.slice(g * shape.members, (g + 1) * shape.members);
      const { socket } = await connectAuthenticated(server.process.wsUrl, group[0]?.token as string);
      const reply = await socket.expect({ type: 'group_create', title: `g${g}`, members: group.slice(1).map((d) => d.userId) }, 'thread');
      socket.close();
      // With several nodes the members take turns (shifted by group, so that one-sender groups spread their senders too).
      group.forEach((device, i) =>
        members.push({
          token: device.token,
          threadId: reply.thread.id,
          ...(i < shape.sendersPerGroup ? { senderIndex: g * shape.sendersPerGroup + i } : {}),
          ...(nodes.length > 1 ? { wsUrl: (nodes[(i + g) % nodes.length] as BenchServer).process.wsUrl } : {}),
        }),
      );
    }
    const warmupMs = context.quick ? 500 : 1500;
    const generator = await Generator.prepare(
      split(members, context.workers).map((share, worker) => ({
        kind: 'group' as const, worker, wsUrl: server.process.wsUrl, members: share, window: shape.window, padBytes: 150, warmupMs, acks: shape.acks ?? false,
      })),
    );
    generator.start();
    await new Promise((resolve) => setTimeout(resolve, warmupMs));
    const ownMark = ownCpuMs();
    const serverMark = await deployment.mark();
    const started = performance.now();
    await new Promise((resolve) => setTimeout(resolve, (context.quick ? 3 : 8) * 1000));
    const seconds = (performance.now() - started) / 1000;
    const generatorCpu = (ownCpuMs() - ownMark) / (seconds * 1000) / context.placement.generatorCoreCount;
    const window = await deployment.since(serverMark);
    const serverCpu = window.serverCpu;
    const reports = await generator.stop();
    const sent = reports.reduce((total, report) => total + report.acked, 0) / seconds;
    const loop = { ...window.figures, ...window.perMessage(sent) };
    const last = new Map<number, [number, number]>();
    for (const report of reports) {
      for (const [key, sentAt, at] of report.lastDelivery) {
        const known = last.get(key);
        last.set(key, [Number.isFinite(sentAt) ? sentAt : (known?.[0] ?? sentAt), Math.max(at, known?.[1] ?? 0)]);
      }
    }
    const spread = percentiles([...last.values()].map(([sentAt, at]) => at - sentAt).filter(Number.isFinite));
    const deliveries = reports.reduce((total, report) => total + report.delivered, 0) / seconds;
    const total = (key: 'receipts' | 'cursorMoves' | 'errors'): number => reports.reduce((sum, report) => sum + (report[key] ?? 0), 0);
    const messages = sent * seconds;
    const acked: Record<string, number> = shape.acks
      ? {
          // Server CPU over the window per message stored: the message, its fanout, the acks and receipts it caused.
          'server cpu µs/msg': sent > 0 ? (serverCpu * 1e6) / sent : Number.NaN,
          'cursor moves/msg': messages > 0 ? total('cursorMoves') / messages : Number.NaN,
          'receipt frames/s': total('receipts') / seconds,
          'receipt frames/delivery': deliveries > 0 ? total('receipts') / (deliveries * seconds) : Number.NaN,
          errors: total('errors'),
        }
      : {};
    context.log(`  ${shape.groups}×${shape.members}${shape.acks ? ', acks' : ''}: ${Math.round(deliveries)} deliveries/s`);
    return {
      scenario,
      setting: `${context.deployment.storage === 'sqlite' ? '' : `${describeDeployment(context.deployment)}: `}${shape.groups} group${shape.groups > 1 ? 's' : ''} of ${shape.members}, ${shape.sendersPerGroup} sender(s) each, window ${shape.window}${shape.acks ? ', every device acks' : ''}`,
      figures: {
        'messages/s': sent,
        'deliveries/s': deliveries,
        'send→last p50 ms': spread.p50,
        'send→last p99 ms': spread.p99,
        ...acked,
        ...loop,
      },
      serverCpu,
      generatorCpu,
      valid: !generatorBound(serverCpu, generatorCpu),
    };
  } catch (error) {
    // What the servers said (warnings and errors) is the first thing to read when a run fails.
    const said = nodes.flatMap((node, index) => node.process.logs.slice(-5).map((line) => `  node ${index}: ${JSON.stringify(line)}`));
    throw said.length > 0 ? new Error(`${(error as Error).message}\nthe servers' last log lines:\n${said.join('\n')}`, { cause: error }) : error;
  } finally {
    await deployment.stop();
  }
}
