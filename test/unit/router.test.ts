import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { Router } from '../../src/transport/http/router.js';
import { RequestAbortedError } from '../../src/transport/streaming.js';

/** A logger whose error lines the test can count. */
function recordingLog(): { log: pino.Logger; errors: () => number } {
  const lines: string[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });
  return { log, errors: () => lines.filter((line) => JSON.parse(line).level >= 50).length };
}

describe('router', () => {
  it('tells the transport which routes stream their request body, matching as requests are routed', () => {
    const router = new Router(pino({ level: 'silent' }), false)
      .add('POST', '/v1/uploads', () => new Response(null, { status: 201 }), { streamBody: true })
      .add('PATCH', '/v1/uploads/:id', () => new Response(null, { status: 204 }), { streamBody: true })
      .add('GET', '/v1/uploads/:id', () => new Response('{}'))
      .add('POST', '/v1/login', () => new Response('{}'));
    assert.equal(router.streamsBody('POST', '/v1/uploads'), true);
    assert.equal(router.streamsBody('PATCH', '/v1/uploads/abc?x=1'), true, 'the query is ignored');
    assert.equal(router.streamsBody('PATCH', 'http://chatd.example/v1/uploads/abc'), true, 'absolute-form targets are routed by their path');
    assert.equal(router.streamsBody('GET', '/v1/uploads/abc'), false);
    assert.equal(router.streamsBody('HEAD', '/v1/uploads/abc'), false);
    assert.equal(router.streamsBody('POST', '/v1/login'), false, 'routes stream only when they ask');
    assert.equal(router.streamsBody('DELETE', '/v1/uploads/abc'), false, 'a method the path does not serve');
    assert.equal(router.streamsBody('POST', '/nowhere'), false);
    assert.equal(router.streamsBody('POST', '//chatd.example/v1/uploads'), false, '"//" starts a path, not a host: as routed, this is no upload');
  });

  it('answers a handler whose body read rejected because the client left without logging an error', async () => {
    const { log, errors } = recordingLog();
    const router = new Router(log, false).add(
      'POST',
      '/v1/uploads',
      () => {
        throw new RequestAbortedError();
      },
      { streamBody: true },
    );
    const response = await router.handle(new Request('http://chatd/v1/uploads', { method: 'POST' }), { remoteAddress: '127.0.0.1' });
    assert.equal(response.status, 400);
    assert.equal(errors(), 0);
  });
});
