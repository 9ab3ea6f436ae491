import { MemoryDeviceLinks, type MemoryLiveness } from '../../src/realtime/memory-device-links.js';
import { deviceLinksContract } from './device-links.contract.js';

deviceLinksContract('in memory', async () => ({ nodes: [new MemoryDeviceLinks()], close: async () => {} }));

deviceLinksContract('in memory, two nodes sharing one liveness map', async () => {
  const live: MemoryLiveness = new Map();
  return { nodes: [new MemoryDeviceLinks(live), new MemoryDeviceLinks(live)], close: async () => {} };
});
