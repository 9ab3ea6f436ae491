import { connectAuthenticated } from '../../test/helpers/ws.js';
import { createDevices, inParallel } from '../lib/accounts.js';
import { Generator, split } from '../lib/generator.js';
import { ownCpuMs } from '../lib/machine.js';
import { type Scenario, generatorBound } from '../lib/scenario.js';
import { startBenchServer } from '../lib/server.js';

const GROUP = 50;
const MESSAGES = 20;

export const reconnectStorm: Scenario = {
  name: 'reconnect-storm',
  summary: `5,000 devices, each with ${MESSAGES} messages in its offline inbox, reconnect at once: time until every inbox is drained, peak RSS`,
  async run(context) {
    const devicesWanted = context.quick ? 500 : 5_000;
    const groups = devicesWanted / GROUP;
    const server = await startBenchServer(context, `[websocket]\nframes_per_second = 100000\n`);
    try {
      const members = await createDevices(server.process.url, 'storm', devicesWanted, (done) => context.log(`  ${done} devices`));
      const senders = await createDevices(server.process.url, 'sender', groups);
      // Groups of 50 keep offline inboxes (under messages.read_diffusion_above); the members never connected, so every message waits.
      await inParallel(groups, 8, async (g) => {
        const { socket } = await connectAuthenticated(server.process.wsUrl, senders[g]?.token as string);
        const group = members.slice(g * GROUP, (g + 1) * GROUP);
        const { thread } = await socket.expect({ type: 'group_create', title: `storm ${g}`, members: group.map((d) => d.userId) }, 'thread');
        for (let i = 0; i < MESSAGES; i++) await socket.expect({ type: 'send', thread_id: thread.id, client_msg_id: `m${i}`, body: { text: `waiting ${i}` } }, 'ack');
        socket.close();
      });
      const generator = await Generator.prepare(
        split(members.map((device) => device.token), context.workers).map((tokens, worker) => ({ kind: 'storm' as const, worker, wsUrl: server.process.wsUrl, tokens })),
      );
      let peak = server.rssBytes();
      const sampler = setInterval(() => (peak = Math.max(peak, server.rssBytes())), 20);
      const mark = server.mark();
      const ownMark = ownCpuMs();
      const startedAt = performance.timeOrigin + performance.now();
      generator.start();
      const reports = await generator.stop(false);
      clearInterval(sampler);
      const seconds = (performance.timeOrigin + performance.now() - startedAt) / 1000;
      const serverCpu = server.cpuShareSince(mark);
      const generatorCpu = (ownCpuMs() - ownMark) / (seconds * 1000) / context.placement.generatorCoreCount;
      const finished = reports.flatMap((report) => report.deliverLatencies);
      const drained = reports.reduce((total, report) => total + report.delivered, 0);
      const failed = reports.reduce((total, report) => total + report.errors, 0);
      return [
        {
          scenario: 'reconnect-storm',
          setting: `${devicesWanted.toLocaleString('en-US')} devices × ${MESSAGES} messages (+1 group_created each)`,
          figures: {
            'all drained ms': Math.max(...finished) - startedAt,
            'messages drained': drained,
            'failed connections': failed,
            'messages/s': drained / seconds,
            'peak RSS MB': peak / 2 ** 20,
          },
          serverCpu,
          generatorCpu,
          valid: !generatorBound(serverCpu, generatorCpu) && failed === 0,
          ...(failed > 0 ? { note: `${failed} connections failed` } : {}),
        },
      ];
    } finally {
      await server.stop();
    }
  },
};
