import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { ChatError } from '../../errors.js';
import { errorResponse } from './respond.js';
import type { Router } from './router.js';

/** The built web client: <package>/dist/web, from dist/transport/http/. */
export const WEB_DIR = fileURLToPath(new URL('../../web/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
};

interface Asset {
  readonly type: string;
  readonly body: Buffer;
  readonly compressible: boolean;
  /** Made at the first request that takes gzip (start-up stays quick). */
  gzipped?: Buffer;
  readonly etag: string;
}

/**
 * Serves the web client: `/` is its page, `/web/<file>` its scripts and
 * styles, `/sw.js` its service worker. The files are small: read once at start-up, gzipped once (when first
 * asked for), and
 * revalidated by ETag (no-cache), so a new chatd version is picked up at once.
 * Returns false when the client was not built (the routes then say so).
 */
export function addWebRoutes(router: Router, dir: string = WEB_DIR): boolean {
  const assets = new Map<string, Asset>();
  if (existsSync(join(dir, 'index.html'))) {
    for (const name of readdirSync(dir)) {
      const body = readFileSync(join(dir, name));
      const type = TYPES[extname(name)] ?? 'application/octet-stream';
      const compressible = /text|javascript|json|svg/.test(type);
      assets.set(name, { type, body, compressible, etag: `"${createHash('sha1').update(body).digest('base64url')}"` });
    }
  }
  const serve = (request: Request, name: string): Response => {
    const asset = assets.get(name);
    if (!asset) {
      const why = assets.size === 0 ? 'the web client is not built into this chatd (npm run build)' : `no such file: /web/${name}`;
      return errorResponse(new ChatError('not_found', why));
    }
    const headers: Record<string, string> = { 'content-type': asset.type, 'cache-control': 'no-cache', etag: asset.etag, vary: 'accept-encoding' };
    if (request.headers.get('if-none-match') === asset.etag) return new Response(null, { status: 304, headers });
    const gzip = asset.compressible && /\bgzip\b/.test(request.headers.get('accept-encoding') ?? '');
    if (!gzip) return new Response(new Uint8Array(asset.body), { status: 200, headers });
    asset.gzipped ??= gzipSync(asset.body, { level: 9 });
    headers['content-encoding'] = 'gzip';
    return new Response(new Uint8Array(asset.gzipped), { status: 200, headers });
  };
  router.add('GET', '/', (request) => serve(request, 'index.html'));
  router.add('GET', '/web/:file', (request, context) => serve(request, context.params.file ?? ''));
  // The service worker (Web Push, docs/web.md) from the root: a worker's scope is at most the folder it is served from.
  router.add('GET', '/sw.js', (request) => serve(request, 'sw.js'));
  return assets.size > 0;
}
