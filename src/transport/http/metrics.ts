import { createHash, timingSafeEqual } from 'node:crypto';
import { ChatError } from '../../errors.js';
import { errorResponse } from './respond.js';
import type { Router } from './router.js';

/**
 * GET /metrics: the process's figures in Prometheus' text format (src/metrics.ts), when the operator turned it on.
 * With a token, only requests that carry it as a bearer token get them (Prometheus: `authorization: { credentials: … }`).
 */
export function addMetricsRoute(router: Router, render: () => Promise<string>, token = ''): void {
  const expected = token === '' ? undefined : digest(token);
  router.add('GET', '/metrics', async (request) => {
    if (expected && !presents(request.headers.get('authorization'), expected)) {
      return errorResponse(new ChatError('unauthorized', 'GET /metrics needs the header "Authorization: Bearer <token>" with metrics.token'), {
        'www-authenticate': 'Bearer realm="chatd metrics"',
      });
    }
    return new Response(await render(), { status: 200, headers: { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-store' } });
  });
}

/** Compared as digests of equal length, in constant time: the answer's timing tells nothing about the token. */
function presents(header: string | null, expected: Buffer): boolean {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match !== null && timingSafeEqual(digest(match[1] as string), expected);
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
