import { test } from 'node:test';
import { loadNativeUws } from '../../src/transport/uws/load.js';
import { createUwsTransport } from '../../src/transport/uws/server.js';
import { transportContract } from './transport.contract.js';

const native = loadNativeUws();

if (native.ok) {
  transportContract('uWebSockets.js', (options) => createUwsTransport(native.uws, options));
} else {
  // As test/helpers/transports.ts does: the run shows what it did not cover, and why.
  test('transport contract: uWebSockets.js', { skip: `the native uWebSockets.js transport cannot load here: ${native.reason}` }, () => {});
}
