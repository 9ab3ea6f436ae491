import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { createClient } from 'redis';
import { type PgServer, startPostgres } from './postgres.js';
import { type ServerProcess, startServer } from './processes.js';
import { type RedisServer, startRedis } from './redis.js';
import { tempDir, writeConfig } from './tmp.js';
import type { Transport } from './transports.js';

/**
 * Several `chatd serve` processes on one real PostgreSQL and one real
 * redis-server, as docs/scaling.md deploys them: one of each engine per test
 * file, each node with its own --data directory (nothing of it is shared: the
 * database is PostgreSQL's). The engines are chosen by the documented keys,
 * passed as environment (CHATD_STORAGE_URL, CHATD_BUS_URL,
 * CHATD_BUS_HEARTBEAT_MS), so a test's own TOML may have any section.
 *
 * Nodes are numbered from 0; a killed node can be restarted on its data
 * directory (on a new port: startServer binds port 0), as an orchestrator
 * restarts a crashed container behind its load balancer.
 */
export interface ClusterOptions {
  readonly nodes: number;
  /** TOML for every node (after TEST_CONFIG): the test's own settings. */
  readonly config?: string;
  readonly transport?: Transport;
  /** The node heartbeat; a node is dead after three missed. Short in tests so that a killed node's devices are taken over soon. */
  readonly heartbeatMs?: number;
  /** Node i's bus URL (e.g. through a TCP proxy that the test cuts); Redis's own by default. */
  readonly busUrl?: (node: number, redis: RedisServer) => string | Promise<string>;
  /** Extra environment for every node. */
  readonly env?: Record<string, string>;
  /** Every node's `<data>/blobs` is one directory (a symlink to it), as the shared volume docs/scaling.md asks for. */
  readonly sharedBlobs?: boolean;
}

export interface Cluster {
  readonly postgres: PgServer;
  readonly redis: RedisServer;
  /** The database every node shares (its URL has no password). */
  readonly databaseUrl: string;
  readonly size: number;
  /** The blobs directory every node shares, with sharedBlobs. */
  readonly blobsDir: string | undefined;
  /** Node i's current process (the restarted one after restart(i)). */
  node(i: number): ServerProcess;
  /** Whether node i is running (not killed or stopped since its last start). */
  alive(i: number): boolean;
  /** The nodes running now, in order. */
  liveNodes(): number[];
  url(i: number): string;
  wsUrl(i: number): string;
  /** SIGKILL to node i's process group, as a crash; resolves when it is gone. */
  kill(i: number): Promise<void>;
  /** Starts node i again on its data directory (after kill or stop); resolves once it listens. */
  restart(i: number): Promise<ServerProcess>;
  /** One statement on the shared database, through `pg` (what the test checks as the truth). */
  sql<R extends Record<string, unknown>>(text: string, values?: unknown[]): Promise<R[]>;
  /**
   * Resolves once `count` connections subscribe the bus channel (chatd's
   * default prefix added: `t:12` is `chatd:t:12`): one per node whose
   * connections follow it. For the few cases where a publication that cannot
   * be filled in later (typing) must not go out before the nodes listen.
   */
  subscribed(channel: string, count: number): Promise<void>;
  /** Stops every node (SIGTERM, then the engines). Safe to call twice. */
  stop(): Promise<void>;
}

/** The node that device `k` of user number `u` connects to: a user's devices spread round robin, and consecutive users start on different nodes (so a sender and the user it writes to are on different nodes). */
export function nodeForDevice(nodes: number, user: number, device: number): number {
  return (user + device) % nodes;
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  // Each engine and node process kills itself at our exit through an 'exit' listener: a cluster has more than ten.
  process.setMaxListeners(Math.max(process.getMaxListeners(), 64));
  const [postgres, redis] = await Promise.all([startPostgres(), startRedis()]);
  const databaseUrl = await postgres.freshDatabase();
  const processes: Array<ServerProcess | undefined> = [];
  const running = new Set<number>();
  const dirs = Array.from({ length: options.nodes }, () => tempDir('chatd-node-'));
  let blobsDir: string | undefined;
  if (options.sharedBlobs) {
    const blobs = join(tempDir('chatd-blobs-'), 'blobs');
    blobsDir = blobs;
    mkdirSync(blobs, { mode: 0o700 });
    for (const dir of dirs) {
      mkdirSync(join(dir, 'data'), { mode: 0o700 });
      symlinkSync(blobs, join(dir, 'data', 'blobs'));
    }
  }

  const launch = async (i: number): Promise<ServerProcess> => {
    const dir = dirs[i] as string;
    const args = ['--data', join(dir, 'data'), '--config', writeConfig(dir, options.config ?? '')];
    if (options.transport) args.push('--transport', options.transport);
    const server = await startServer(args, {
      env: {
        ...options.env,
        CHATD_STORAGE_URL: databaseUrl,
        CHATD_BUS_URL: options.busUrl ? await options.busUrl(i, redis) : redis.url,
        ...(options.heartbeatMs === undefined ? {} : { CHATD_BUS_HEARTBEAT_MS: String(options.heartbeatMs) }),
      },
    });
    processes[i] = server;
    running.add(i);
    void server.exited.then(() => {
      if (processes[i] === server) running.delete(i);
    });
    return server;
  };

  let pool: pg.Pool | undefined;
  const stopAll = async (): Promise<void> => {
    await Promise.all(processes.map((server) => server?.stop('SIGTERM')));
    await pool?.end();
    pool = undefined;
    await Promise.all([redis.stop(), postgres.stop()]);
  };
  try {
    // All at once on the fresh database, as a deployment starts: migrations run once, under the advisory lock.
    await Promise.all(dirs.map((_, i) => launch(i)));
  } catch (error) {
    await stopAll();
    throw error;
  }

  const current = (i: number): ServerProcess => {
    const server = processes[i];
    if (!server) throw new Error(`no node ${i}`);
    return server;
  };
  return {
    postgres,
    redis,
    databaseUrl,
    size: options.nodes,
    blobsDir,
    node: current,
    alive: (i) => running.has(i),
    liveNodes: () => [...running].sort((a, b) => a - b),
    url: (i) => current(i).url,
    wsUrl: (i) => current(i).wsUrl,
    kill: async (i) => {
      const server = current(i);
      running.delete(i);
      await server.stop('SIGKILL');
    },
    restart: async (i) => {
      if (running.has(i)) throw new Error(`node ${i} is running`);
      return launch(i);
    },
    sql: async <R extends Record<string, unknown>>(text: string, values?: unknown[]) => {
      if (!pool) {
        pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
        // An idle connection that PostgreSQL ends (its shutdown at the end of the file) is no failure: a query reports its own.
        pool.on('error', () => {});
      }
      return (await pool.query<R>(text, values)).rows;
    },
    subscribed: async (channel, count) => {
      const client = createClient({ url: redis.url });
      await client.connect();
      try {
        const deadline = Date.now() + 10_000;
        for (;;) {
          const [, subscribers] = (await client.sendCommand(['PUBSUB', 'NUMSUB', `chatd:${channel}`])) as [string, number];
          if (subscribers >= count) return;
          if (Date.now() > deadline) throw new Error(`${subscribers} connections subscribe ${channel} after 10 s, not ${count}`);
          // Redis tells no one of a SUBSCRIBE: look again in a moment (the wait ends on the state, not on the time).
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      } finally {
        await client.quit();
      }
    },
    stop: stopAll,
  };
}
