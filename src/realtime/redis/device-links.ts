import type { DeviceLinks, Link } from '../../services/live/device-links.js';
import { LocalLinks } from '../local-links.js';
import { nodeOfKey } from '../../services/live/nodes.js';
import { redisKeys } from './keys.js';
import { LuaScript, type RedisCommands } from './script.js';

/*
 * Liveness in Redis: `<prefix>live:<device>` holds the live link's key, and
 * `<prefix>live-of:<node>` (device → key) what each node holds, so that a
 * survivor finds a dead node's devices without scanning. Every change to both
 * is one script: Redis runs one at a time, which is the atomicity across
 * nodes the interface asks for. ARGV[..] `liveOf` is the hash's name without
 * its node (the node is read from the key being replaced inside the script).
 */

/** Sets the device's live link; the node that held it before no longer lists it. */
const markLive = new LuaScript(
  'markLive',
  `local old = redis.call('GET', KEYS[1])
if old and old ~= ARGV[1] then redis.call('HDEL', ARGV[3] .. string.match(old, '^[^:]*'), ARGV[2]) end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
return 1`,
);

/** Ends the device's liveness; answers the key that held it, or nil. */
const endLiveness = new LuaScript(
  'endLiveness',
  `local old = redis.call('GET', KEYS[1])
if not old then return false end
redis.call('DEL', KEYS[1])
redis.call('HDEL', ARGV[2] .. string.match(old, '^[^:]*'), ARGV[1])
return old`,
);

/** Compare-and-delete: ends the liveness only if link ARGV[1] holds it; answers 1 if it did. */
const release = new LuaScript(
  'release',
  `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[2], ARGV[2])
return 1`,
);

/**
 * Device links of one node of several: the node's own connections in memory
 * (as MemoryDeviceLinks), the liveness in Redis. A call that cannot reach
 * Redis rejects with BusUnavailableError and changes nothing there (a detach
 * still unlists the link here: the connection is gone).
 */
export class RedisDeviceLinks<L extends Link = Link> implements DeviceLinks<L> {
  private readonly local = new LocalLinks<L>();

  /** `prefix`: the deployment's key prefix (`chatd:`). Link keys must be `<node>:<rest>`. */
  constructor(
    private readonly redis: RedisCommands,
    private readonly prefix: string,
  ) {}

  attach(link: L): void {
    this.local.attach(link);
  }

  async detach(link: L): Promise<boolean> {
    this.local.detach(link);
    return this.release(link.deviceId, link.key);
  }

  async release(deviceId: number, key: string): Promise<boolean> {
    const { prefix } = this;
    const keys = [redisKeys.live(prefix, deviceId), redisKeys.liveOf(prefix, nodeOfKey(key))];
    return (await release.run(this.redis, keys, [key, String(deviceId)])) === 1;
  }

  async endLiveness(deviceId: number): Promise<string | undefined> {
    const { prefix } = this;
    const held = await endLiveness.run(this.redis, [redisKeys.live(prefix, deviceId)], [String(deviceId), redisKeys.liveOf(prefix, '')]);
    return typeof held === 'string' ? held : undefined;
  }

  async markLive(link: L): Promise<void> {
    const { prefix } = this;
    const keys = [redisKeys.live(prefix, link.deviceId), redisKeys.liveOf(prefix, nodeOfKey(link.key))];
    await markLive.run(this.redis, keys, [link.key, String(link.deviceId), redisKeys.liveOf(prefix, '')]);
  }

  /** Nothing to do: this node keeps no liveness of its own (Redis has it, and the other node's script already ended it). */
  forgetLiveness(_deviceId: number, _key: string): void {}

  ofDevice(deviceId: number): readonly L[] {
    return this.local.ofDevice(deviceId);
  }

  ofUser(userId: number): readonly L[] {
    return this.local.ofUser(userId);
  }

  isLocal(key: string): boolean {
    return this.local.isLocal(key);
  }
}
