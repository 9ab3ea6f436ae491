import { MemoryDeviceLinks } from '../../src/realtime/memory-device-links.js';
import { deviceLinksContract } from './device-links.contract.js';

deviceLinksContract('in memory', async () => ({ nodes: [new MemoryDeviceLinks()], close: async () => {} }));
