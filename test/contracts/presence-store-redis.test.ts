import { RedisPresenceStore } from '../../src/realtime/redis/presence-store.js';
import { presenceStoreContract } from './presence-store.contract.js';
import { RedisFixture } from './redis-fixture.js';

const redis = new RedisFixture();

presenceStoreContract('on Redis, two nodes', async () => {
  const prefix = redis.prefix();
  const clients = [await redis.connect(), await redis.connect()];
  return { nodes: clients.map((client) => new RedisPresenceStore(client, prefix)), close: () => redis.disconnect(clients) };
});
