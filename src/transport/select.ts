import { StartupError } from '../errors.js';
import type { TransportKind, TransportOptions, TransportServer } from './types.js';
import { loadNativeUws } from './uws/load.js';
import { createUwsTransport } from './uws/server.js';

export interface TransportChoice {
  readonly server: TransportServer;
  /** Why this implementation runs, for the start-up log. */
  readonly why: string;
  /** Set when `auto` had to fall back to node: worth a warning. */
  readonly fallback: boolean;
}

/**
 * Picks the socket implementation. `uws` refuses to start without its native
 * addon (never its JS imitation); `auto` falls back to `node` and says why.
 */
export async function createTransport(requested: 'auto' | TransportKind, options: TransportOptions): Promise<TransportChoice> {
  if (requested === 'node') return { server: await createNodeTransport(options), why: 'transport = "node" in the configuration', fallback: false };
  const loaded = loadNativeUws();
  if (loaded.ok) {
    const why = requested === 'uws' ? 'transport = "uws" in the configuration' : 'the uWebSockets.js native addon loaded';
    return { server: createUwsTransport(loaded.uws, options), why, fallback: false };
  }
  if (requested === 'uws') {
    throw new StartupError(`transport "uws" was requested but ${loaded.reason}; use transport = "node" (or "auto") on this Node`);
  }
  return { server: await createNodeTransport(options), why: `${loaded.reason}; using node:http + ws instead`, fallback: true };
}

/** Loading the `ws` package took about 50 ms of a 300 ms start-up: only a server that runs on it loads it. */
async function createNodeTransport(options: TransportOptions): Promise<TransportServer> {
  const node = await import('./node/server.js');
  return node.createNodeTransport(options);
}
