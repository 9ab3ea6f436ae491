import { after, before } from 'node:test';
import { type RedisServer, startRedis } from '../helpers/redis.js';
import { BusFlush, freshPrefix, startBusNode } from '../helpers/redis-bus.js';
import { brokerContract } from './broker.contract.js';

let server: RedisServer;
before(async () => {
  server = await startRedis();
});
after(async () => {
  await server.stop();
});

/** Two nodes on one redis-server, each with its own two connections, under a prefix of their own. */
brokerContract('on Redis, two nodes', async () => {
  const prefix = freshPrefix();
  const nodes = await Promise.all([startBusNode(server.url, prefix, 'a'), startBusNode(server.url, prefix, 'b')]);
  const buses = nodes.map((node) => node.bus);
  const markers = await BusFlush.on(buses, prefix);
  return {
    nodes: nodes.map((node) => node.broker),
    flush: () => markers.flush(),
    close: async () => {
      await Promise.all(nodes.map((node) => node.broker.close()));
      await Promise.all(buses.map((bus) => bus.close()));
    },
  };
});
