import { test } from 'node:test';
import { loadNativeUws } from '../../src/transport/uws/load.js';

export type Transport = 'uws' | 'node';

const native = loadNativeUws();

/** Why the uws variants cannot run on this Node (no native addon, or one the libc cannot load); undefined when they can. */
export const uwsUnavailable: string | undefined = native.ok ? undefined : `the native uWebSockets.js transport cannot load here: ${native.reason}`;

/**
 * The transports to run `what` on: uws and node where uWebSockets.js's native
 * addon loads, else node alone, with a skipped test in place of the uws
 * variant that says why (so a Node 22/24 run shows what it did not cover).
 */
export function transports(what: string): readonly Transport[] {
  if (uwsUnavailable === undefined) return ['uws', 'node'];
  test(`${what} (uws)`, { skip: uwsUnavailable }, () => {});
  return ['node'];
}

/** The transport a test that is not about transports runs on: uws where it loads (what `auto` picks), else node. */
export const preferredTransport: Transport = uwsUnavailable === undefined ? 'uws' : 'node';
