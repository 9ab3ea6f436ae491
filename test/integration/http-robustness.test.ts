import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { request } from '../helpers/http.js';
import { type ServerProcess, startServer } from '../helpers/processes.js';
import { rawRequest } from '../helpers/raw-http.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { transports } from '../helpers/transports.js';

/** What no client should be able to do: end the server, or get no answer it can read. */
for (const transport of transports('odd HTTP requests')) {
  describe(`odd HTTP requests on the ${transport} transport`, () => {
    let server: ServerProcess;

    before(async () => {
      const dir = tempDir();
      // A short auth deadline, so that the server closes an idle raw socket soon.
      server = await startServer(['--data', `${dir}/data`, '--transport', transport, '--config', writeConfig(dir, '[websocket]\nauth_timeout_ms = 300\n')]);
    });
    after(() => server.stop());

    const alive = async (): Promise<void> => {
      assert.deepEqual((await request(`${server.url}/healthz`)).body, { status: 'ok' });
    };

    it('answers TRACE, CONNECT and OPTIONS on a path with 405 and the methods it serves', async () => {
      for (const method of ['TRACE', 'CONNECT']) {
        const answer = await rawRequest(server.port, `${method} /healthz HTTP/1.1\r\nHost: x\r\n\r\n`);
        assert.equal(answer.status, 405, `${method}: ${answer.head}`);
        assert.equal(JSON.parse(answer.body).error.code, 'method_not_allowed');
        assert.match(answer.head, /\r\nallow: GET, HEAD, POST/i);
      }
      const options = await request(`${server.url}/healthz`, { method: 'OPTIONS' });
      assert.equal(options.status, 405);
      await alive();
    });

    it('reads header values with bytes above Latin-1 (UTF-8 or raw) as bytes, however many requests carry them', async () => {
      for (let i = 0; i < 40; i++) {
        const utf8 = Buffer.from(`X-Note: a✓b ${i}`, 'utf8').toString('latin1');
        const answer = await rawRequest(server.port, `GET /healthz HTTP/1.1\r\nHost: x\r\n${utf8}\r\nUser-Agent: caf\xe9\r\n\r\n`);
        assert.equal(answer.status, 200, answer.head);
      }
      const viaFetch = await request(`${server.url}/v1/login`, {
        body: { username: 'nobody', password: 'whatever1', device_name: 'x', platform: 'web' },
        headers: { 'x-forwarded-for': 'caf\u00e9' },
      });
      assert.equal(viaFetch.status, 401);
      await alive();
    });

    it('lives on when a client resets the connection right after a CONNECT or an upgrade to another path', async () => {
      for (const request of ['CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n', upgradeRequest('/elsewhere')]) {
        for (let i = 0; i < 5; i++) {
          const socket = connect(server.port, '127.0.0.1');
          socket.on('error', () => {});
          await new Promise((resolve) => socket.once('connect', resolve));
          socket.write(request);
          socket.resetAndDestroy();
        }
      }
      await alive();
    });

    it('cuts the socket of a client that never answers the close frame, soon after closing it', { timeout: 15_000 }, async () => {
      // A raw client that completes the handshake and then reads nothing: chatd closes it when auth does not come.
      const socket = connect(server.port, '127.0.0.1', () => socket.write(upgradeRequest('/v1/ws')));
      socket.on('error', () => {});
      let received = '';
      socket.on('data', (chunk) => (received += chunk.toString('latin1')));
      await new Promise((resolve) => socket.once('close', resolve));
      assert.match(received, /^HTTP\/1\.1 101/);
    });

    it('answers a header that is not HTTP at all (a bare CR in a value) or lives on', async () => {
      const answer = await rawRequest(server.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: a\rb\r\n\r\n');
      assert.ok(answer.status === undefined || answer.status === 400 || answer.status === 200, answer.head);
      await alive();
    });

    if (transport === 'node') {
      it('answers unknown methods, the `*` target and absolute-form targets', async () => {
        const propfind = await rawRequest(server.port, 'PROPFIND /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
        assert.equal(propfind.status, 405);
        assert.equal(JSON.parse(propfind.body).error.code, 'method_not_allowed');
        // Node's own parser refuses a method it has never heard of with 400 before chatd sees it.
        assert.equal((await rawRequest(server.port, 'FOO /healthz HTTP/1.1\r\nHost: x\r\n\r\n')).status, 400);
        const star = await rawRequest(server.port, 'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n');
        assert.equal(star.status, 400);
        assert.equal(JSON.parse(star.body).error.code, 'bad_request');
        const absolute = await rawRequest(server.port, 'GET http://x/healthz HTTP/1.1\r\nHost: x\r\n\r\n');
        assert.equal(absolute.status, 200);
        const tunnel = await rawRequest(server.port, 'CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n');
        assert.equal(tunnel.status, 405);
        await alive();
      });
    } else {
      it('keeps serving while requests its HTTP parser cannot read are open (unknown methods, `*`, absolute-form)', async () => {
        // uWS's parser closes the first kind without a status and leaves the others to its
        // 10-second idle timeout (docs/operations.md): what matters here is that nothing else suffers.
        const odd = ['PROPFIND /healthz', 'FOO /healthz', 'OPTIONS *', 'GET http://x/healthz', 'CONNECT example.org:443'].map((line) => {
          const socket = connect(server.port, '127.0.0.1', () => socket.write(`${line} HTTP/1.1\r\nHost: x\r\n\r\n`));
          socket.on('error', () => {});
          return socket;
        });
        await Promise.all(odd.map((socket) => new Promise((resolve) => socket.once('connect', resolve))));
        await alive();
        for (const socket of odd) socket.destroy();
        await alive();
      });
    }
  });
}

function upgradeRequest(path: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;
}
