import { redisKeys } from '../../src/realtime/redis/keys.js';
import { RedisDeviceLinks } from '../../src/realtime/redis/device-links.js';
import { RedisNodeDirectory } from '../../src/realtime/redis/nodes.js';
import { nodesContract } from './nodes.contract.js';
import { RedisFixture } from './redis-fixture.js';

/** Short, so that lapse() waits little; long enough that a check right after a heartbeat never sees it lapse. */
const TTL_MS = 400;

const redis = new RedisFixture();

nodesContract('on Redis, three nodes', async () => {
  const prefix = redis.prefix();
  const clients = [await redis.connect(), await redis.connect(), await redis.connect()] as const;
  const view = (node: string, at: 0 | 1 | 2) => ({ directory: new RedisNodeDirectory(clients[at], { node, prefix, ttlMs: TTL_MS }), links: new RedisDeviceLinks(clients[at], prefix) });
  const heartbeats = ['a', 'b', 'c'].map((node) => redisKeys.alive(prefix, node));
  return {
    nodes: [view('a', 0), view('b', 1), view('c', 2)],
    // Waits for the event itself: Redis has expired every heartbeat key (polled, as Redis tells no one).
    lapse: async () => {
      const deadline = Date.now() + 10 * TTL_MS;
      while ((await clients[0].exists(heartbeats)) > 0) {
        if (Date.now() > deadline) throw new Error('heartbeat keys did not expire');
        await new Promise((resolve) => setTimeout(resolve, TTL_MS / 8));
      }
    },
    close: () => redis.disconnect(clients),
  };
});
