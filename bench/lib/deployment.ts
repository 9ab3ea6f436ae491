import pg from 'pg';
import { type PgServer, startPostgres } from '../../test/helpers/postgres.js';
import { type RedisServer, startRedis } from '../../test/helpers/redis.js';
import { type Placement, pinProcessTree, processTreeCpuMs } from './machine.js';
import { type BenchServer, type CpuMark, type ServerMetrics, loopFigures, startBenchServer } from './server.js';

/** What `--storage` and `--nodes` ask for. */
export interface DeploymentOptions {
  readonly storage: 'sqlite' | 'postgres';
  readonly nodes: number;
}

export const SINGLE_SQLITE: DeploymentOptions = { storage: 'sqlite', nodes: 1 };

/** The words a row's setting starts with. */
export function describeDeployment(options: DeploymentOptions): string {
  if (options.storage === 'sqlite') return 'SQLite';
  return `PostgreSQL, ${options.nodes} node${options.nodes > 1 ? 's + Redis' : ''}`;
}

/**
 * chatd as the bench runs it: one `chatd serve` on SQLite (the default), or
 * one or more on a PostgreSQL the bench starts with its durable defaults
 * (fsync, full-page writes and synchronous commit on, as SQLite's
 * synchronous=full), with a redis-server between them when there are
 * several. Every server-side process (the nodes, PostgreSQL's postmaster and
 * backends, Redis) is pinned to the server's cores, the load generator keeps
 * its own: the server side is measured as a whole, and per process in CPU
 * time per message.
 */
export interface Deployment {
  readonly options: DeploymentOptions;
  readonly nodes: readonly BenchServer[];
  mark(): Promise<DeploymentMark>;
  /**
   * What the server side did since `mark`: `serverCpu` is every server-side
   * process's CPU as a share of one core; `figures` the nodes' event-loop
   * figures (loopFigures, over all nodes); `perMessage`, given the rate of
   * messages acked meanwhile (known once the generator has reported), where a
   * message's time went on PostgreSQL (nothing on SQLite).
   */
  since(mark: DeploymentMark): Promise<Window>;
  stop(): Promise<void>;
}

export interface Window {
  readonly serverCpu: number;
  readonly figures: Record<string, number>;
  perMessage(messagesPerSecond: number): Record<string, number>;
}

export interface DeploymentMark {
  readonly at: number;
  readonly nodes: readonly CpuMark[];
  readonly metrics: readonly ServerMetrics[];
  readonly postgresCpuMs: number;
  readonly redisCpuMs: number;
  readonly xactCommit: number;
  readonly deadlocks: number;
}

type Context = { readonly placement: Placement; readonly profileDir: string | undefined; readonly serverNodeFlags: readonly string[]; readonly deployment: DeploymentOptions };

/** Sums the nodes' counters, so that loopFigures reads them as one server's (its shares then add up over the nodes). */
function merged(all: readonly ServerMetrics[]): ServerMetrics {
  const first = all[0] as ServerMetrics;
  const sum = (key: 'transactions' | 'writes' | 'transactionSeconds' | 'gcSeconds' | 'storageRoundTrips' | 'busRoundTrips'): number => all.reduce((total, m) => total + m[key], 0);
  return {
    at: first.at,
    transactions: sum('transactions'),
    writes: sum('writes'),
    transactionSeconds: sum('transactionSeconds'),
    gcSeconds: sum('gcSeconds'),
    storageRoundTrips: sum('storageRoundTrips'),
    busRoundTrips: sum('busRoundTrips'),
    delay: first.delay.map(([bound], index) => [bound, all.reduce((total, m) => total + (m.delay[index]?.[1] ?? 0), 0)] as const),
  };
}

export async function startDeployment(context: Context, toml: string): Promise<Deployment> {
  const { storage, nodes: count } = context.deployment;
  if (storage === 'sqlite') return sqliteDeployment(await startBenchServer(context, toml));
  const cores = context.placement.serverCores;
  let postgres: PgServer | undefined;
  let redis: RedisServer | undefined;
  let stats: pg.Client | undefined;
  const nodes: BenchServer[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((node) => node.stop()));
    await stats?.end().catch(() => {});
    await redis?.stop();
    await postgres?.stop();
  };
  try {
    postgres = await startPostgres({ durable: true });
    if (cores) pinProcessTree(postgres.pid as number, cores);
    const url = await postgres.freshDatabase();
    if (count > 1) {
      redis = await startRedis();
      if (cores) pinProcessTree(redis.pid as number, cores);
    }
    // Through the environment, so that a scenario's config may have a [storage] table of its own.
    // A scenario's thousands of devices connect at once, each authentication waiting for its go-live write; on a
    // shared core with PostgreSQL that took more than the default 5 s (code 4001) for some: the scenario measures
    // the messages, not that rush.
    const env = { CHATD_STORAGE_URL: url, ...(redis ? { CHATD_BUS_URL: redis.url } : {}), CHATD_WEBSOCKET_AUTH_TIMEOUT_MS: '120000' };
    // One at a time: the first migrates the database (the others would wait for its advisory lock anyway).
    for (let index = 0; index < count; index++) nodes.push(await startBenchServer(context, toml, { env }));
    stats = new pg.Client({ connectionString: url });
    await stats.connect();
  } catch (error) {
    await stop();
    throw error;
  }
  const postgresPid = postgres.pid as number;
  const redisPid = redis?.pid;
  const client = stats;
  // Transactions PostgreSQL committed in this database (its statistics, flushed by each backend within about a second).
  const databaseStats = async (): Promise<{ xactCommit: number; deadlocks: number }> => {
    const row = (await client.query<{ c: string; d: string }>('SELECT xact_commit AS c, deadlocks AS d FROM pg_stat_database WHERE datname = current_database()')).rows[0];
    return { xactCommit: Number(row?.c ?? 0), deadlocks: Number(row?.d ?? 0) };
  };
  return {
    options: context.deployment,
    nodes,
    async mark() {
      const metrics = await Promise.all(nodes.map((node) => node.metrics()));
      return {
        at: performance.now(),
        nodes: nodes.map((node) => node.mark()),
        metrics,
        postgresCpuMs: processTreeCpuMs(postgresPid),
        redisCpuMs: redisPid ? processTreeCpuMs(redisPid) : 0,
        ...(await databaseStats()),
      };
    },
    async since(mark) {
      const elapsedMs = performance.now() - mark.at;
      const nodeShares = nodes.map((node, index) => node.cpuShareSince(mark.nodes[index] as CpuMark));
      const postgresMs = processTreeCpuMs(postgresPid) - mark.postgresCpuMs;
      const redisMs = redisPid ? processTreeCpuMs(redisPid) - mark.redisCpuMs : 0;
      const metrics = await Promise.all(nodes.map((node) => node.metrics()));
      const database = await databaseStats();
      const commits = database.xactCommit - mark.xactCommit;
      const from = merged(mark.metrics);
      const to = merged(metrics);
      const loop = loopFigures(from, to);
      const chatdShare = nodeShares.reduce((total, share) => total + share, 0);
      const transactions = to.transactions - from.transactions;
      return {
        serverCpu: chatdShare + (postgresMs + redisMs) / elapsedMs,
        figures: {
          ...loop,
          // Shares of each node's loop, averaged over the nodes.
          'in commits %': (loop['in commits %'] as number) / count,
          'GC %': (loop['GC %'] as number) / count,
        },
        perMessage(messagesPerSecond) {
        const messages = (messagesPerSecond * elapsedMs) / 1000;
        const perMessage = (value: number): number => (messages > 0 ? value / messages : Number.NaN);
        return {
          'msgs/commit': transactions > 0 ? messages / transactions : Number.NaN,
          'PG round trips/msg': perMessage(to.storageRoundTrips - from.storageRoundTrips),
          'PG xacts/msg': perMessage(commits),
          // Each costs deadlock_timeout (a second) and then every unit of the batch run again alone.
          'PG deadlocks': database.deadlocks - mark.deadlocks,
          ...(redisPid ? { 'Redis round trips/msg': perMessage(to.busRoundTrips - from.busRoundTrips) } : {}),
          'chatd cpu %': chatdShare,
          'PG cpu %': postgresMs / elapsedMs,
          ...(redisPid ? { 'Redis cpu %': redisMs / elapsedMs } : {}),
          'chatd cpu µs/msg': perMessage(chatdShare * elapsedMs * 1000),
          'PG cpu µs/msg': perMessage(postgresMs * 1000),
          ...(redisPid ? { 'Redis cpu µs/msg': perMessage(redisMs * 1000) } : {}),
        };
        },
      };
    },
    stop,
  };
}

/** The SQLite server as before: its rows keep their figures and columns. */
function sqliteDeployment(server: BenchServer): Deployment {
  return {
    options: SINGLE_SQLITE,
    nodes: [server],
    async mark() {
      const cpu = server.mark();
      return { at: performance.now(), nodes: [cpu], metrics: [await server.metrics()], postgresCpuMs: 0, redisCpuMs: 0, xactCommit: 0, deadlocks: 0 };
    },
    async since(mark) {
      const serverCpu = server.cpuShareSince(mark.nodes[0] as CpuMark);
      return { serverCpu, figures: loopFigures(mark.metrics[0] as ServerMetrics, await server.metrics()), perMessage: () => ({}) };
    },
    stop: () => server.stop(),
  };
}
