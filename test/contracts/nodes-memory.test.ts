import { MemoryDeviceLinks } from '../../src/realtime/memory-device-links.js';
import { MemoryNodeDirectory, type MemoryNodesState } from '../../src/realtime/memory-nodes.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { nodesContract } from './nodes.contract.js';

const TTL_MS = 3_000;

nodesContract('in memory, three nodes on a fake clock', async () => {
  const clock = new FakeClock();
  const state: MemoryNodesState = { heartbeats: new Map(), liveness: new Map() };
  const view = (node: string) => ({ directory: new MemoryNodeDirectory({ node, clock, ttlMs: TTL_MS, state }), links: new MemoryDeviceLinks(state.liveness) });
  return {
    nodes: [view('a'), view('b'), view('c')],
    lapse: async () => clock.advance(TTL_MS),
    close: async () => {},
  };
});
