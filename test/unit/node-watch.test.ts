import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryDeviceLinks } from '../../src/realtime/memory-device-links.js';
import { MemoryNodeDirectory, type MemoryNodesState } from '../../src/realtime/memory-nodes.js';
import { MemoryPresenceStore } from '../../src/realtime/memory-presence-store.js';
import { NodeWatch } from '../../src/services/node-watch.js';
import { FakeClock } from '../helpers/fake-clock.js';

const HEARTBEAT_MS = 1_000;
const TTL_MS = 3 * HEARTBEAT_MS;

/** Nodes a and b over one shared memory state, each with its watch; what the watches did is recorded. */
function deployment() {
  const clock = new FakeClock();
  const state: MemoryNodesState = { heartbeats: new Map(), liveness: new Map() };
  const connections = new MemoryPresenceStore();
  const links = new MemoryDeviceLinks(state.liveness);
  const seen = { offline: [] as number[], handedOver: [] as number[], forgotten: [] as string[], failures: [] as unknown[] };
  let failNextHandover = false;
  const watch = (node: string) =>
    new NodeWatch({
      nodes: new MemoryNodeDirectory({ node, clock, ttlMs: TTL_MS, state }),
      connections,
      presence: { wentOffline: (userIds) => seen.offline.push(...userIds) },
      delivery: {
        releaseDeadLink: async (deviceId, key) => {
          if (failNextHandover) {
            failNextHandover = false;
            throw new Error('the database is away');
          }
          if (await links.release(deviceId, key)) seen.handedOver.push(deviceId);
        },
      },
      clock,
      heartbeatMs: HEARTBEAT_MS,
      forgotten: () => seen.forgotten.push(node),
      failed: (error) => seen.failures.push(error),
    });
  return { clock, state, connections, links, seen, a: watch('a'), b: watch('b'), failHandover: () => (failNextHandover = true) };
}

describe('NodeWatch', () => {
  it("a survivor cleans up after a node whose heartbeat lapsed: its connection keys, its devices' liveness (handed over), then forgets it", async () => {
    const d = deployment();
    await d.a.start();
    await d.b.start();
    await d.connections.add(1, 'a:1');
    await d.connections.add(2, 'a:2');
    await d.connections.add(2, 'b:1');
    for (const [key, deviceId] of [['a:1', 5], ['a:2', 6], ['b:1', 7]] as const) await d.links.markLive({ key, deviceId, userId: 1 });
    await d.a.stop(); // a dies: no more heartbeats
    d.clock.advance(TTL_MS - 1);
    await d.b.tick();
    assert.deepEqual(d.seen.handedOver, [], 'not dead before its TTL ran out');
    d.clock.advance(HEARTBEAT_MS);
    await d.b.tick();
    assert.deepEqual(d.seen.offline, [1], 'user 2 is still connected on b');
    assert.deepEqual([...(await d.connections.online([1, 2]))], [2]);
    assert.deepEqual(d.seen.handedOver, [5, 6]);
    assert.deepEqual([...d.state.liveness], [[7, 'b:1']], "b's own liveness stays");
    assert.deepEqual([...d.state.heartbeats.keys()], ['b'], 'a is forgotten');
    await d.b.tick();
    assert.deepEqual(d.seen.handedOver, [5, 6], 'once');
    assert.deepEqual(d.seen.forgotten, [], 'b was never forgotten');
    await d.b.stop();
  });

  it('a node forgotten while it was away is told so at its next heartbeat', async () => {
    const d = deployment();
    await d.a.start();
    await d.b.start();
    await d.a.stop();
    d.clock.advance(TTL_MS);
    await d.b.tick();
    await d.a.tick();
    assert.deepEqual(d.seen.forgotten, ['a']);
    await d.a.tick();
    assert.deepEqual(d.seen.forgotten, ['a'], 'registered again: told once');
    await d.b.stop();
  });

  it('a failed sweep leaves the dead node unforgotten, and the next tick finishes it', async () => {
    const d = deployment();
    await d.a.start();
    await d.b.start();
    await d.links.markLive({ key: 'a:1', deviceId: 5, userId: 1 });
    await d.a.stop();
    d.failHandover();
    d.clock.advance(TTL_MS);
    await d.b.tick();
    assert.equal(d.seen.failures.length, 1);
    assert.deepEqual([...d.state.heartbeats.keys()].sort(), ['a', 'b'], 'not forgotten yet');
    await d.b.tick();
    assert.deepEqual(d.seen.handedOver, [5]);
    assert.deepEqual([...d.state.heartbeats.keys()], ['b']);
    await d.b.stop();
  });
});
