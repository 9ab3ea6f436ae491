import { RedisDeviceLinks } from '../../src/realtime/redis/device-links.js';
import { deviceLinksContract } from './device-links.contract.js';
import { RedisFixture } from './redis-fixture.js';

const redis = new RedisFixture();

deviceLinksContract('on Redis, two nodes', async () => {
  const prefix = redis.prefix();
  const clients = [await redis.connect(), await redis.connect()];
  return { nodes: clients.map((client) => new RedisDeviceLinks(client, prefix)), close: () => redis.disconnect(clients) };
});
