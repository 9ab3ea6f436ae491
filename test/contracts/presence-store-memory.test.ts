import { MemoryPresenceStore } from '../../src/realtime/memory-presence-store.js';
import { presenceStoreContract } from './presence-store.contract.js';

presenceStoreContract('in memory', async () => ({ nodes: [new MemoryPresenceStore()], close: async () => {} }));
