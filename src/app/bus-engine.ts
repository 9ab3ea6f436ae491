import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { LiveLink } from '../realtime/channels.js';
import { MemoryBroker } from '../realtime/memory-broker.js';
import { MemoryDeviceLinks } from '../realtime/memory-device-links.js';
import { MemoryPresenceStore } from '../realtime/memory-presence-store.js';
import { RedisBroker } from '../realtime/redis/broker.js';
import { openRedisBus } from '../realtime/redis/connection.js';
import { RedisDeviceLinks } from '../realtime/redis/device-links.js';
import { RedisNodeDirectory } from '../realtime/redis/nodes.js';
import { RedisPresenceStore } from '../realtime/redis/presence-store.js';
import type { Broker } from '../services/live/broker.js';
import type { DeviceLinks } from '../services/live/device-links.js';
import type { NodeDirectory } from '../services/live/nodes.js';
import type { PresenceStore } from '../services/live/presence-store.js';
import { type EngineHealth, memoryBusEngine, redisEngine } from './engines.js';

/** What is live between nodes, on one engine. */
export interface OpenedBus {
  readonly broker: Broker & { readonly dropped?: number };
  readonly links: DeviceLinks<LiveLink>;
  readonly presenceStore: PresenceStore;
  /** The deployment's nodes (Redis); undefined for one node in memory, which has no one to watch. */
  readonly nodes: NodeDirectory | undefined;
  readonly health: EngineHealth;
  /** After the broker closed: the engine's connections. */
  close(): Promise<void>;
}

/** One node in memory (the default), or Redis at bus.url, shared by every node. */
export async function openBusEngine(config: Config, node: string, log: Logger): Promise<OpenedBus> {
  if (config.bus.url === '') {
    return {
      broker: new MemoryBroker(),
      links: new MemoryDeviceLinks<LiveLink>(),
      presenceStore: new MemoryPresenceStore(),
      nodes: undefined,
      health: memoryBusEngine(),
      close: async () => {},
    };
  }
  const prefix = config.bus.prefix;
  const bus = await openRedisBus(config.bus.url, { prefix, log, node });
  try {
    const broker = await RedisBroker.start(bus);
    return {
      broker,
      links: new RedisDeviceLinks<LiveLink>(bus.commands, prefix),
      presenceStore: new RedisPresenceStore(bus.commands, prefix),
      // Dead after three missed heartbeats.
      nodes: new RedisNodeDirectory(bus.commands, { node, prefix, ttlMs: 3 * config.bus.heartbeat_ms }),
      health: redisEngine(bus),
      close: () => bus.close(),
    };
  } catch (error) {
    await bus.close();
    throw error;
  }
}
