import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StartupError } from '../errors.js';
import { whyNotListening } from './listen-failure.js';
import type { HttpHandler } from './types.js';

export interface MetricsListener {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * A plain node:http listener of its own for GET /metrics (metrics.listen), so
 * that the figures can be scraped on a local or private address while the
 * main port faces the internet. Whatever the main transport is: one scrape
 * every few seconds needs no uWS. It reads no request body.
 */
export function listenForMetrics(host: string, port: number, handle: HttpHandler): Promise<MetricsListener> {
  const server = createServer((req, res) => void answer(req, res, handle));
  return new Promise((resolve, reject) => {
    const fail = (error: NodeJS.ErrnoException): void => {
      reject(new StartupError(`cannot listen for /metrics on ${host}:${port}: ${whyNotListening(error.code ?? '', error.message, 'metrics.listen')}`));
    };
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

async function answer(req: IncomingMessage, res: ServerResponse, handle: HttpHandler): Promise<void> {
  try {
    const method = req.method ?? 'GET';
    // The only route is GET /metrics; other methods never reach `new Request`, which throws on some (TRACE).
    if (method !== 'GET' && method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET', 'content-type': 'text/plain' }).end('only GET /metrics is served here\n');
      return;
    }
    const headers = new Headers();
    const authorization = req.headers.authorization;
    if (authorization !== undefined) headers.set('authorization', authorization);
    const response = await handle(new Request(`http://localhost${(req.url ?? '/').startsWith('/') ? req.url : '/'}`, { method, headers }), {
      remoteAddress: req.socket.remoteAddress ?? '',
    });
    const body = Buffer.from(await response.arrayBuffer());
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(method === 'HEAD' ? undefined : body);
  } catch {
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
    res.end();
  }
}
