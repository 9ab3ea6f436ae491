import { type HeldLiveness, type NodeDirectory } from '../../services/live/nodes.js';
import { redisKeys } from './keys.js';
import { command, LuaScript, type RedisCommands } from './script.js';

/**
 * Registers node ARGV[1] and refreshes its heartbeat key for ARGV[2] ms;
 * answers 1 if the node was registered already (or ARGV[3] says this is its
 * first heartbeat), 0 if it had been forgotten.
 */
const heartbeat = new LuaScript(
  'heartbeat',
  `local known = redis.call('SADD', KEYS[1], ARGV[1]) == 0
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
if known or ARGV[3] == '1' then return 1 end
return 0`,
);

/** The registered nodes (KEYS[1]) whose heartbeat key (ARGV[1] .. node) has expired. */
const deadNodes = new LuaScript(
  'deadNodes',
  `local dead = {}
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. node) == 0 then table.insert(dead, node) end
end
return dead`,
);

export interface RedisNodeDirectoryOptions {
  /** This node's id. */
  readonly node: string;
  /** The deployment's key prefix (`chatd:`). */
  readonly prefix: string;
  /** A node is dead once this long has passed since its last heartbeat (Redis expires the heartbeat key: one clock, Redis's). */
  readonly ttlMs: number;
}

/**
 * The node directory in Redis: the set `<prefix>nodes` of registered nodes,
 * and per node a key `<prefix>alive:<node>` that each heartbeat sets with the
 * TTL. Dead nodes are those registered without the key. What a node holds is
 * read from the per-node indexes the device links keep (`live-of:<node>`);
 * its presence keys, from the presence store's (removeAll). A call that
 * cannot reach Redis rejects with BusUnavailableError.
 *
 * Redis should run without persistence and with `maxmemory-policy
 * noeviction`: an evicted heartbeat key makes a live node look dead, an
 * evicted liveness or presence key loses state no one rebuilds.
 */
export class RedisNodeDirectory implements NodeDirectory {
  private registered = false;
  /**
   * The Redis server's run id at the last heartbeat. A restarted server may
   * have restored an old snapshot (persistence on), in which this node is
   * still registered but presence and liveness are stale: a new run id is
   * treated as having been forgotten.
   */
  private runId: string | undefined;

  constructor(
    private readonly redis: RedisCommands,
    private readonly options: RedisNodeDirectoryOptions,
  ) {}

  async heartbeat(): Promise<boolean> {
    const { node, prefix, ttlMs } = this.options;
    const first = !this.registered;
    const [answer, info] = await Promise.all([
      heartbeat.run(this.redis, [redisKeys.nodes(prefix), redisKeys.alive(prefix, node)], [node, String(Math.max(1, Math.round(ttlMs))), first ? '1' : '0']),
      command('heartbeat', () => this.redis.info('server')),
    ]);
    const runId = /run_id:(\w+)/.exec(String(info))?.[1];
    const restarted = this.runId !== undefined && runId !== this.runId;
    this.registered = true;
    this.runId = runId;
    return answer === 1 && !restarted;
  }

  async deadNodes(): Promise<string[]> {
    const { node, prefix } = this.options;
    const dead = (await deadNodes.run(this.redis, [redisKeys.nodes(prefix)], [redisKeys.alive(prefix, '')])) as string[];
    return dead.filter((other) => other !== node);
  }

  async liveDevicesOf(node: string): Promise<HeldLiveness[]> {
    const held = await command('liveDevicesOf', () => this.redis.hGetAll(redisKeys.liveOf(this.options.prefix, node)));
    return Object.entries(held).map(([deviceId, key]) => ({ deviceId: Number(deviceId), key: String(key) }));
  }

  async forget(node: string): Promise<void> {
    const { prefix } = this.options;
    await command('forget', () => this.redis.multi().sRem(redisKeys.nodes(prefix), node).del(redisKeys.alive(prefix, node)).exec());
  }
}
