import { execFileSync } from 'node:child_process';
import { Generator, split } from '../lib/generator.js';
import { ownCpuMs, processCpuMs } from '../lib/machine.js';
import { type Context, type Result, type Scenario, generatorBound } from '../lib/scenario.js';
import { pinned, startPinnedListener } from '../lib/pinned.js';
import { relayComparison, relayFloor } from './relay-floor.js';

async function rawUws(context: Context, mode: 'echo' | 'publish'): Promise<Result> {
  const { child, url } = await startPinnedListener(context, './uws-child.ts', [mode], 'the uWS ceiling server');
  try {
    const connections = mode === 'echo' ? 200 : context.quick ? 200 : 1000;
    const perWorker = split(Array.from({ length: connections }, (_, i) => i), context.workers).map((list) => list.length);
    const warmupMs = 500;
    const generator = await Generator.prepare(
      perWorker.map((count, worker) => ({
        kind: 'raw' as const, worker, wsUrl: url, connections: count,
        publishers: mode === 'echo' ? count : worker === 0 ? 4 : 0, window: 32, warmupMs,
      })),
    );
    generator.start();
    await new Promise((resolve) => setTimeout(resolve, warmupMs));
    const serverMark = processCpuMs(child.pid as number);
    const ownMark = ownCpuMs();
    const started = performance.now();
    await new Promise((resolve) => setTimeout(resolve, (context.quick ? 2 : 5) * 1000));
    const ms = performance.now() - started;
    const serverCpu = (processCpuMs(child.pid as number) - serverMark) / ms;
    const generatorCpu = (ownCpuMs() - ownMark) / ms / context.placement.generatorCoreCount;
    const reports = await generator.stop();
    const delivered = reports.reduce((total, report) => total + report.delivered, 0) / (ms / 1000);
    return {
      scenario: 'ceilings',
      setting: mode === 'echo' ? 'bare uWS echo, 200 connections × window 32' : `bare uWS publish to ${connections} subscribers, 4 publishers × window 32`,
      figures: { [mode === 'echo' ? 'echoes/s' : 'deliveries/s']: delivered },
      serverCpu,
      generatorCpu,
      valid: !generatorBound(serverCpu, generatorCpu),
      ...(generatorBound(serverCpu, generatorCpu) ? { note: 'the generator saturated first: the real ceiling is higher' } : {}),
    };
  } finally {
    child.kill('SIGKILL');
  }
}

function sqliteInserts(context: Context): Result[] {
  const [program, ...args] = pinned(context, './sqlite-child.ts', [context.quick ? '1' : '3']);
  const rates = JSON.parse(execFileSync(program as string, args, { encoding: 'utf8' })) as Record<string, number>;
  const row = (setting: string, value: number | undefined): Result => ({
    scenario: 'ceilings', setting, figures: { 'rows/s': value ?? Number.NaN }, serverCpu: 1, generatorCpu: 0, valid: true,
  });
  return [
    row('SQLite insert of a 200-byte message row, one transaction each, synchronous=FULL', rates.full_per_row),
    row('SQLite insert, one transaction each, synchronous=NORMAL', rates.normal_per_row),
    row('SQLite insert, 100 rows per transaction, synchronous=FULL', rates.full_per_100),
  ];
}

/**
 * chatd's own send statements without the server around them (bench/lib/send-sql-child.ts):
 * per commit size, the messages/s they alone allow and their cost per message.
 */
function sendStatements(context: Context): Result[] {
  const [program, ...args] = pinned(context, './send-sql-child.ts', [context.quick ? '1' : '3']);
  const runs = JSON.parse(execFileSync(program as string, args, { encoding: 'utf8' })) as Array<{ perCommit: number; wallUs: number; cpuUs: number }>;
  return runs.map((run) => ({
    scenario: 'ceilings',
    setting: `chatd's send statements alone (the SQLite append unit, 200 live direct threads), ${run.perCommit.toLocaleString('en-US')} per commit, synchronous=FULL`,
    figures: { 'msg/s': 1e6 / run.wallUs, 'µs per msg': run.wallUs, 'cpu µs per msg': run.cpuUs },
    serverCpu: run.cpuUs / run.wallUs,
    generatorCpu: 0,
    valid: true,
  }));
}

export const ceilings: Scenario = {
  name: 'ceilings',
  summary: "on the same core: bare uWS echo and publish, SQLite inserts, chatd's send statements alone, the relay floor (chatd's direct frames with no storage, at direct-latency's rates); chatd figures of this run as a fraction of them",
  async run(context) {
    const statements = sendStatements(context);
    const results = [await rawUws(context, 'echo'), await rawUws(context, 'publish'), ...sqliteInserts(context), ...statements];
    const relay = await relayFloor(context);
    results.push(...relay);
    /** The highest of the figure over this run's rows whose setting starts so (the group's rows differ by window). */
    const figure = (scenario: string, setting: string, name: string): number | undefined => {
      const values = (context.earlier.get(scenario) ?? []).filter((result) => result.setting.startsWith(setting)).map((result) => result.figures[name] ?? Number.NaN);
      return values.length > 0 ? Math.max(...values) : undefined;
    };
    const fraction = (label: string, chatd: number | undefined, ceiling: Result | undefined, name: string): void => {
      const value = ceiling?.figures[name];
      if (chatd === undefined || value === undefined) return;
      results.push({
        scenario: 'ceilings', setting: label, figures: { 'chatd': chatd, 'ceiling': value, 'percent of ceiling': (chatd / value) * 100 }, serverCpu: Number.NaN, generatorCpu: Number.NaN, valid: true,
        // A generator-bound ceiling is a lower bound of the machine's: chatd's share of the real one is smaller.
        ...(ceiling?.valid === false ? { note: 'the ceiling was generator-bound (a lower bound): chatd\'s share of the real ceiling is smaller' } : {}),
      });
    };
    const direct = (name: string): number | undefined => figure('direct-throughput', 'synchronous=full', name);
    fraction('chatd direct acked msg/s (synchronous=full) vs SQLite 100 rows/transaction FULL', direct('acked msg/s'), results[4], 'rows/s');
    fraction('chatd direct acked msg/s vs its send statements alone, 1,000 per commit', direct('acked msg/s'), statements[0], 'msg/s');
    fraction('chatd direct delivered msg/s vs bare uWS echo', direct('delivered msg/s'), results[0], 'echoes/s');
    fraction('chatd group deliveries/s (1 group, best row) vs bare uWS publish', figure('group-fanout', '1 group', 'deliveries/s'), results[1], 'deliveries/s');
    results.push(...relayComparison(context, relay));
    return results;
  },
};
