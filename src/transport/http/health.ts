import { json } from './respond.js';
import type { Router } from './router.js';

/** One engine the node depends on, as the composition root reports it (src/app/engines.ts). */
export interface EngineStatus {
  /** "storage" or "bus": the key in /readyz's `engines`. */
  readonly role: string;
  /** "sqlite", "postgres", "memory", "redis". */
  readonly engine: string;
  readonly ok: boolean;
  readonly latency: { readonly p50Ms: number; readonly p99Ms: number; readonly count: number } | undefined;
}

export interface HealthProbe {
  /** The database answers a query (a round trip on a networked engine). */
  databaseReachable(): Promise<boolean>;
  /** Started and not shutting down: a load balancer may send traffic. */
  ready(): boolean;
  /** Every engine the node depends on, pinged now (each bounded in time). */
  engines(): Promise<readonly EngineStatus[]>;
}

/**
 * /healthz: the process is up and its database answers (liveness). /readyz: it takes traffic (readiness):
 * started, not shutting down, and every engine answers — a node that lost PostgreSQL or Redis would only
 * answer sends with `unavailable`, so a load balancer should send its clients to another node meanwhile.
 */
export function addHealthRoutes(router: Router, probe: HealthProbe): void {
  router.add('GET', '/healthz', async () =>
    (await probe.databaseReachable()) ? json(200, { status: 'ok' }) : json(503, { status: 'unavailable', reason: 'the database does not answer' }),
  );
  router.add('GET', '/readyz', async () => {
    if (!probe.ready()) return json(503, { status: 'not_ready' });
    const states = await probe.engines();
    const engines = Object.fromEntries(states.map((state) => [state.role, engineJson(state)]));
    return states.every((state) => state.ok) ? json(200, { status: 'ready', engines }) : json(503, { status: 'unavailable', engines });
  });
}

function engineJson(state: EngineStatus): Record<string, unknown> {
  const { latency } = state;
  return {
    engine: state.engine,
    ok: state.ok,
    ...(latency ? { latency_ms: { p50: round(latency.p50Ms), p99: round(latency.p99Ms) }, round_trips: latency.count } : {}),
  };
}

/** Microseconds are noise in a health answer. */
function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
