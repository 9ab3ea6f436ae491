import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { createNodeTransport } from '../../src/transport/node/server.js';
import type { ConnectionListener, TransportOptions, TransportServer } from '../../src/transport/types.js';
import { loadNativeUws } from '../../src/transport/uws/load.js';
import { createUwsTransport } from '../../src/transport/uws/server.js';

/**
 * The transports' last line of defence, tested on each with real sockets: whatever a handler or
 * a WebSocket listener throws becomes a 500 or a 1011 close, is reported, and the process goes on.
 */
const uws = loadNativeUws();
const makers: Array<[string, ((options: TransportOptions) => TransportServer) | undefined, string]> = [
  ['uws', uws.ok ? (options) => createUwsTransport(uws.uws, options) : undefined, uws.ok ? '' : uws.reason],
  ['node', createNodeTransport, ''],
];

for (const [kind, make, skipReason] of makers) {
  describe(`a ${kind} transport whose handlers throw`, { skip: make ? false : skipReason }, () => {
    let server: TransportServer;
    let base: string;
    const reported: Array<{ error: unknown; where: string }> = [];

    before(async () => {
      const listener = (fail: (text: string) => void): ConnectionListener => ({
        onMessage: (text) => fail(text),
        onBinary: () => {},
        onDrain: () => {},
        onClose: () => {},
      });
      server = (make as (options: TransportOptions) => TransportServer)({
        maxBodyBytes: 1024,
        onError: (error, where) => reported.push({ error, where }),
        http: (request) => {
          const path = new URL(request.url).pathname;
          if (path === '/throws') throw new Error('thrown before any await');
          if (path === '/rejects') return Promise.reject(new Error('rejected later'));
          return Promise.resolve(new Response('fine', { status: 200 }));
        },
        websocket: {
          path: '/ws',
          maxPayloadBytes: 1024,
          maxBufferedBytes: 64 * 1024,
          idleTimeoutSeconds: 60,
          accept: (connection) =>
            listener((text) => {
              if (text === 'throw') throw new Error('listener failed');
              connection.send(`echo ${text}`);
            }),
        },
      });
      const port = await server.listen('127.0.0.1', 0);
      base = `127.0.0.1:${port}`;
    });
    after(() => server.close());

    it('answers a handler that throws, at once or later, with 500 internal and reports the error', async () => {
      for (const path of ['/throws', '/rejects']) {
        const response = await fetch(`http://${base}${path}`, { method: 'POST', body: '{}' });
        assert.equal(response.status, 500, path);
        const body = (await response.json()) as { error: { code: string; message: string } };
        assert.equal(body.error.code, 'internal');
        assert.doesNotMatch(body.error.message, /thrown|rejected/, 'the client learns nothing internal');
      }
      assert.deepEqual(
        reported.map(({ error }) => (error as Error).message),
        ['thrown before any await', 'rejected later'],
      );
      assert.equal(await (await fetch(`http://${base}/fine`)).text(), 'fine');
    });

    it('closes a WebSocket whose listener throws with 1011 and keeps serving the others', async () => {
      const open = (): Promise<WebSocket> =>
        new Promise((resolve, reject) => {
          const ws = new WebSocket(`ws://${base}/ws`);
          ws.once('open', () => resolve(ws));
          ws.once('error', reject);
        });
      const [failing, other] = await Promise.all([open(), open()]);
      const closed = new Promise<number>((resolve) => failing.once('close', (code) => resolve(code)));
      failing.send('throw');
      assert.equal(await closed, 1011);
      assert.ok(reported.some(({ error, where }) => (error as Error).message === 'listener failed' && /WebSocket message/.test(where)));
      const echoed = new Promise<string>((resolve) => other.once('message', (data) => resolve(data.toString())));
      other.send('still here');
      assert.equal(await echoed, 'echo still here');
      other.close();
    });
  });
}
