import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RedisDeviceLinks } from '../../src/realtime/redis/device-links.js';
import { BusUnavailableError } from '../../src/realtime/redis/errors.js';
import { RedisNodeDirectory } from '../../src/realtime/redis/nodes.js';
import { RedisPresenceStore } from '../../src/realtime/redis/presence-store.js';
import type { RedisCommands } from '../../src/realtime/redis/script.js';
import { deviceLinksContract } from './device-links.contract.js';
import { RedisFixture } from './redis-fixture.js';

const redis = new RedisFixture();

/** Resolves when the client has reconnected (events.once would reject at the 'error' the lost connection emits first). */
function readyAgain(client: RedisCommands): Promise<void> {
  return new Promise((resolve) => client.once('ready', () => resolve()));
}

deviceLinksContract('on Redis, two nodes', async () => {
  const prefix = redis.prefix();
  const clients = [await redis.connect(), await redis.connect()];
  return { nodes: clients.map((client) => new RedisDeviceLinks(client, prefix)), close: () => redis.disconnect(clients) };
});

describe('The live seams on Redis when Redis goes away', () => {
  it('reject with BusUnavailableError while it is down, and work again once it is back (its scripts loaded anew)', async () => {
    const server = await redis.server();
    const client = await redis.connect();
    const prefix = redis.prefix();
    const links = new RedisDeviceLinks(client, prefix);
    const presence = new RedisPresenceStore(client, prefix);
    const nodes = new RedisNodeDirectory(client, { node: 'a', prefix, ttlMs: 10_000 });
    const phone = { key: 'a:1', deviceId: 1, userId: 10 };
    links.attach(phone);
    await links.markLive(phone);
    assert.equal(await nodes.heartbeat(), true);

    await server.stop();
    await assert.rejects(links.markLive(phone), BusUnavailableError);
    await assert.rejects(links.endLiveness(1), BusUnavailableError);
    await assert.rejects(presence.add(10, 'a:1'), BusUnavailableError);
    await assert.rejects(presence.online([10]), BusUnavailableError);
    await assert.rejects(nodes.heartbeat(), BusUnavailableError);
    await assert.rejects(links.detach(phone), BusUnavailableError);
    assert.deepEqual(links.ofDevice(1), [], 'the closed connection is unlisted all the same');

    const ready = readyAgain(client);
    await server.start();
    await ready;
    const again = { key: 'a:2', deviceId: 1, userId: 10 };
    assert.equal(await links.detach(again), false, 'Redis came back empty: nothing live');
    await links.markLive(again);
    assert.equal(await links.endLiveness(1), 'a:2');
    assert.equal(await presence.add(10, 'a:2'), 1);
    assert.equal(await nodes.heartbeat(), false, 'the directory lost the node with its data: the node must rebuild');
    await redis.disconnect([client]);
  });

  it("a node's heartbeat after Redis restarted from a snapshot says the node was forgotten, though the snapshot lists it", async () => {
    const server = await redis.server();
    const client = await redis.connect();
    const nodes = new RedisNodeDirectory(client, { node: 'a', prefix: redis.prefix(), ttlMs: 60_000 });
    assert.equal(await nodes.heartbeat(), true);
    assert.equal(await nodes.heartbeat(), true);
    await client.sendCommand(['SAVE']);
    const ready = readyAgain(client);
    await server.restart();
    await ready;
    assert.equal(await nodes.heartbeat(), false, 'its presence and liveness since the snapshot are lost');
    assert.equal(await nodes.heartbeat(), true);
    await client.flushAll();
    await client.sendCommand(['SAVE']); // an empty snapshot: nothing comes back at a later start
    await redis.disconnect([client]);
  });
});
