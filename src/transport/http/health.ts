import { json } from './respond.js';
import type { Router } from './router.js';

export interface HealthProbe {
  /** The database answers a query (a round trip on a networked engine). */
  databaseReachable(): Promise<boolean>;
  /** Started and not shutting down: a load balancer may send traffic. */
  ready(): boolean;
}

/** /healthz: the process is up and its database answers (liveness). /readyz: it takes traffic (readiness). */
export function addHealthRoutes(router: Router, probe: HealthProbe): void {
  router.add('GET', '/healthz', async () =>
    (await probe.databaseReachable()) ? json(200, { status: 'ok' }) : json(503, { status: 'unavailable', reason: 'the database does not answer' }),
  );
  router.add('GET', '/readyz', () => (probe.ready() ? json(200, { status: 'ready' }) : json(503, { status: 'not_ready' })));
}
