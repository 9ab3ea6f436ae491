import type { Router } from './router.js';

/** GET /metrics: the process's figures in Prometheus' text format (src/metrics.ts), when the operator turned it on. */
export function addMetricsRoute(router: Router, render: () => string): void {
  router.add(
    'GET',
    '/metrics',
    () => new Response(render(), { status: 200, headers: { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-store' } }),
  );
}
