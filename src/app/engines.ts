import type { LatencySummary } from '../latency.js';
import type { PgDatabase } from '../storage/postgres/database.js';
import type { Storage } from '../storage/ports/storage.js';

/**
 * The engines a node depends on, as /readyz and /metrics see them: one for
 * storage (SQLite or PostgreSQL) and one for the bus between nodes (this
 * node's memory, or Redis). Engine-neutral, so that the HTTP side names no
 * engine: the composition root makes one EngineHealth per engine it opened.
 */

export type EngineName = 'sqlite' | 'postgres' | 'memory' | 'redis';
export type EngineRole = 'storage' | 'bus';

export interface EngineHealth {
  readonly name: EngineName;
  readonly role: EngineRole;
  /** Whether the engine answers now (a round trip on a networked engine). Resolves false rather than rejecting. */
  ping(): Promise<boolean>;
  /** Undefined for an engine in this process (SQLite, memory): no round trips to measure. */
  latency(): LatencySummary | undefined;
}

/** One engine's state at one moment: what /readyz shows and /metrics exports. */
export interface EngineState {
  readonly role: EngineRole;
  readonly engine: EngineName;
  readonly ok: boolean;
  readonly latency: LatencySummary | undefined;
}

/**
 * A ping that has not answered within this is a "no": a PostgreSQL whose host
 * went away leaves a connection attempt hanging until the kernel gives up, and
 * a load balancer asks /readyz with a timeout of a few seconds of its own.
 */
export const PING_TIMEOUT_MS = 2_000;

/** Pings every engine at once; each answer is bounded by timeoutMs. */
export async function checkEngines(engines: readonly EngineHealth[], timeoutMs = PING_TIMEOUT_MS): Promise<EngineState[]> {
  return Promise.all(
    engines.map(async (engine) => ({
      role: engine.role,
      engine: engine.name,
      ok: await pingWithin(engine, timeoutMs),
      latency: engine.latency(),
    })),
  );
}

async function pingWithin(engine: EngineHealth, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([engine.ping().catch(() => false), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The SQLite database of storage.dir: a query in this process, so no latency to report. */
export function sqliteEngine(storage: Pick<Storage, 'ping'>): EngineHealth {
  return { name: 'sqlite', role: 'storage', ping: () => storage.ping(), latency: () => undefined };
}

/** One node, no bus: fanout and presence live in this process's memory, which is up while the process is. */
export function memoryBusEngine(): EngineHealth {
  return { name: 'memory', role: 'bus', ping: async () => true, latency: () => undefined };
}

/** PostgreSQL (storage.url): a `SELECT 1` through the pool, and the round trips of every statement the node ran. */
export function postgresEngine(db: Pick<PgDatabase, 'ping' | 'latency'>): EngineHealth {
  return { name: 'postgres', role: 'storage', ping: () => db.ping(), latency: () => db.latency() };
}

/** Redis (bus.url): a PING on the command connection, and the round trips of the node's commands. */
export function redisEngine(bus: { ping(): Promise<boolean>; latency(): LatencySummary | undefined }): EngineHealth {
  return { name: 'redis', role: 'bus', ping: () => bus.ping(), latency: () => bus.latency() };
}
