import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type ServerProcess, startServer } from '../helpers/processes.js';
import { tempDir } from '../helpers/tmp.js';

describe('serving the web client', () => {
  const servers: ServerProcess[] = [];
  after(() => Promise.all(servers.map((server) => server.stop())));

  const serve = async (...args: string[]): Promise<ServerProcess> => {
    const server = await startServer(['--data', join(tempDir(), 'data'), ...args]);
    servers.push(server);
    return server;
  };

  it('serves the page at / and its script gzipped, revalidated by ETag', async () => {
    const server = await serve();
    const page = await fetch(`${server.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    assert.match(await page.text(), /<script type="module" src="\/web\/app.js">/);
    const script = await fetch(`${server.url}/web/app.js`, { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(script.status, 200);
    assert.equal(script.headers.get('content-encoding'), 'gzip');
    assert.match(script.headers.get('content-type') ?? '', /javascript/);
    const etag = script.headers.get('etag') ?? '';
    assert.equal((await fetch(`${server.url}/web/app.js`, { headers: { 'if-none-match': etag } })).status, 304);
    const missing = await fetch(`${server.url}/web/nothing.js`);
    assert.equal(missing.status, 404);
    assert.match(((await missing.json()) as { error: { message: string } }).error.message, /no such file/);
  });

  it('--no-web turns it off; the API stays', async () => {
    const server = await serve('--no-web');
    const page = await fetch(`${server.url}/`);
    assert.equal(page.status, 404);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  });
});
