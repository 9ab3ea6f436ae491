import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StreamSocket } from '../../src/client/stream-socket.js';

interface Call {
  readonly url: string;
  readonly method: string;
  readonly headers: Record<string, string>;
  readonly body: string | undefined;
  /** Answers it: a body the test writes to (`write`, `end`), or a status. */
  respond(status: number, headers?: Record<string, string>): Body;
  fail(): void;
}

interface Body {
  write(text: string): void;
  end(): void;
}

/** A scripted server behind `fetch`: every request waits for the test to answer it. */
class ScriptedFetch {
  readonly calls: Call[] = [];
  private waiters: Array<() => void> = [];

  readonly fetch = (url: string, init: RequestInit): Promise<Response> =>
    new Promise((resolve, reject) => {
      const headers = Object.fromEntries(Object.entries((init.headers ?? {}) as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v]));
      init.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
      this.calls.push({
        url, method: init.method ?? 'GET', headers, body: init.body as string | undefined,
        respond: (status, extra = {}) => {
          let controller!: ReadableStreamDefaultController<Uint8Array>;
          const stream = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
          resolve(new Response(status === 204 ? null : stream, { status, headers: extra }));
          return {
            write: (text) => controller.enqueue(new TextEncoder().encode(text)),
            end: () => controller.close(),
          };
        },
        fail: () => reject(new TypeError('fetch failed')),
      });
      for (const waiter of this.waiters.splice(0)) waiter();
    });

  /** The n-th request (from 0), once made. */
  async call(n: number): Promise<Call> {
    while (this.calls.length <= n) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.calls[n] as Call;
  }
}

function socketOn(mode: 'stream' | 'poll' = 'stream') {
  const server = new ScriptedFetch();
  const socket = new StreamSocket({ server: 'http://chat.test/', mode, fetch: server.fetch });
  const received: string[] = [];
  const closes: Array<{ code: number; reason: string }> = [];
  let gotMessage: () => void = () => {};
  socket.onmessage = (event) => {
    received.push(String(event.data));
    gotMessage();
  };
  socket.onclose = (event) => closes.push(event);
  const messages = (n: number): Promise<void> =>
    new Promise((resolve) => {
      gotMessage = () => received.length >= n && resolve();
      gotMessage();
    });
  const opened = new Promise<void>((resolve) => (socket.onopen = () => resolve()));
  return { server, socket, received, closes, messages, opened };
}

const auth = JSON.stringify({ type: 'auth', id: 'auth', token: 'secret-token' });

describe('the stream socket', () => {
  it('opens with the auth frame as the POST body, never puts the token in a URL, and sends the frames of one turn in one POST', async () => {
    const { server, socket, opened } = socketOn();
    await opened;
    socket.send(auth);
    const open = await server.call(0);
    assert.equal(open.url, 'http://chat.test/v1/stream');
    assert.equal(open.method, 'POST');
    assert.deepEqual(JSON.parse(open.body as string), [JSON.parse(auth)]);
    const down = open.respond(200, { 'Chatd-Stream': 'n1.abc', 'Content-Type': 'text/event-stream' });
    down.write('id: 1\ndata: {"type":"welcome"}\n\n');
    socket.send('{"type":"ping","id":"1"}');
    socket.send('{"type":"threads","id":"2"}');
    const post = await server.call(1);
    assert.equal(post.url, 'http://chat.test/v1/stream/n1.abc');
    assert.equal(post.headers.authorization, 'Bearer secret-token');
    assert.deepEqual(JSON.parse(post.body as string), [{ type: 'ping', id: '1' }, { type: 'threads', id: '2' }]);
    // One POST at a time: frames sent meanwhile wait for the next.
    socket.send('{"type":"ping","id":"3"}');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(server.calls.length, 2);
    post.respond(204);
    const next = await server.call(2);
    assert.deepEqual(JSON.parse(next.body as string), [{ type: 'ping', id: '3' }]);
    for (const call of server.calls) assert.ok(!call.url.includes('secret-token'));
    socket.close();
  });

  it('sends smaller batches after a 413 (more frames than the server takes in one), the same frames in the same order', async () => {
    const { server, socket, opened } = socketOn();
    await opened;
    socket.send(auth);
    (await server.call(0)).respond(200, { 'Chatd-Stream': 'n1.abc' });
    for (let i = 0; i < 5; i++) socket.send(`{"n":${i}}`);
    const big = await server.call(1);
    assert.equal(JSON.parse(big.body as string).length, 5);
    big.respond(413).end();
    const first = await server.call(2);
    assert.deepEqual(JSON.parse(first.body as string), [{ n: 0 }, { n: 1 }]);
    first.respond(204);
    const second = await server.call(3);
    assert.deepEqual(JSON.parse(second.body as string), [{ n: 2 }, { n: 3 }]);
    socket.close();
  });

  it('resumes a cut stream with Last-Event-ID and gives each frame once, without a close', async () => {
    const { server, socket, received, closes, messages, opened } = socketOn();
    await opened;
    socket.send(auth);
    const first = (await server.call(0)).respond(200, { 'Chatd-Stream': 'n1.abc' });
    first.write('id: 1\ndata: {"n":1}\n\n: keepalive\n\nid: 2\ndata: {"n":');
    first.write('2}\n\nid: 3\ndata: {"n":3'); // cut inside frame 3
    await messages(2);
    first.end();
    const resume = await server.call(1);
    assert.equal(resume.method, 'GET');
    assert.equal(resume.url, 'http://chat.test/v1/stream/n1.abc');
    assert.equal(resume.headers['last-event-id'], '2');
    assert.equal(resume.headers.authorization, 'Bearer secret-token');
    const second = resume.respond(200);
    second.write('id: 2\ndata: {"n":2}\n\nid: 3\ndata: {"n":3}\n\nid: 4\ndata: {"n":4}\n\n');
    await messages(4);
    assert.deepEqual(received, ['{"n":1}', '{"n":2}', '{"n":3}', '{"n":4}']);
    // A network failure of the resume is tried again.
    second.end();
    (await server.call(2)).fail();
    const again = await server.call(3);
    assert.equal(again.headers['last-event-id'], '4');
    assert.deepEqual(closes, []);
    socket.close();
  });

  it('closes with 1006 when the server can no longer resume (409 resume_failed), so the client reconnects and catches up', async () => {
    const { server, socket, closes, opened } = socketOn();
    await opened;
    socket.send(auth);
    (await server.call(0)).respond(200, { 'Chatd-Stream': 'n1.abc' }).end();
    (await server.call(1)).respond(409, { 'Content-Type': 'application/json' }).end();
    await new Promise<void>((resolve) => {
      socket.onclose = (event) => {
        closes.push(event);
        resolve();
      };
    });
    assert.equal(closes[0]?.code, 1006);
    assert.equal(server.calls.length, 2, 'nothing more is asked of a session that is over');
  });

  it('ends its session on the server when closed (DELETE, the token in a header), once, and not one the server already ended', async () => {
    const { server, socket, closes, opened } = socketOn();
    await opened;
    socket.send(auth);
    (await server.call(0)).respond(200, { 'Chatd-Stream': 'n1.abc' });
    socket.close(4000, 'no_reply');
    socket.close();
    const end = await server.call(1);
    assert.equal(end.method, 'DELETE');
    assert.equal(end.url, 'http://chat.test/v1/stream/n1.abc');
    assert.equal(end.headers.authorization, 'Bearer secret-token');
    end.fail(); // Best effort: a failure is ignored.
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(closes, [{ code: 4000, reason: 'no_reply' }]);
    assert.equal(server.calls.length, 2, 'one DELETE');

    // A POST the network lost leaves a session the server may still hold: it is ended too.
    const lost = socketOn();
    await lost.opened;
    lost.socket.send(auth);
    (await lost.server.call(0)).respond(200, { 'Chatd-Stream': 'n1.def' });
    lost.socket.send('{"type":"ping","id":"1"}');
    (await lost.server.call(1)).fail();
    const lostEnd = await lost.server.call(2);
    assert.deepEqual([lostEnd.method, lostEnd.url], ['DELETE', 'http://chat.test/v1/stream/n1.def']);

    // 404 on a POST: the server ended it already; nothing more is asked.
    const gone = socketOn();
    await gone.opened;
    gone.socket.send(auth);
    (await gone.server.call(0)).respond(200, { 'Chatd-Stream': 'n1.ghi' });
    gone.socket.send('{"type":"ping","id":"1"}');
    (await gone.server.call(1)).respond(404).end();
    await new Promise<void>((resolve) => (gone.socket.onclose = () => resolve()));
    gone.socket.close();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(gone.server.calls.length, 2);
  });

  it('passes on the server’s close (event: close) with its code and reason', async () => {
    const { server, socket, opened } = socketOn();
    await opened;
    socket.send(auth);
    const down = (await server.call(0)).respond(200, { 'Chatd-Stream': 'n1.abc' });
    const closed = new Promise<{ code: number; reason: string }>((resolve) => (socket.onclose = resolve));
    down.write('id: 1\ndata: {"type":"error"}\n\nevent: close\ndata: {"code":4002,"reason":"auth_failed","message":"bad token"}\n\n');
    assert.deepEqual(await closed, { code: 4002, reason: 'auth_failed' });
  });

  it('tells a server it cannot reach from one that answered with an error', async () => {
    const unreachable = socketOn();
    await unreachable.opened;
    unreachable.socket.send(auth);
    (await unreachable.server.call(0)).fail();
    await new Promise<void>((resolve) => (unreachable.socket.onclose = () => resolve()));
    assert.equal(unreachable.socket.failure, 'unreachable');

    const refused = socketOn();
    await refused.opened;
    refused.socket.send(auth);
    (await refused.server.call(0)).respond(404).end();
    await new Promise<void>((resolve) => (refused.socket.onclose = () => resolve()));
    assert.equal(refused.socket.failure, 'refused');
  });

  it('in poll mode asks for the next frames after each answer, with the last id it has', async () => {
    const { server, socket, received, messages, opened } = socketOn('poll');
    await opened;
    socket.send(auth);
    const open = await server.call(0);
    assert.equal(open.url, 'http://chat.test/v1/stream?mode=poll');
    const first = open.respond(200, { 'Chatd-Stream': 'n1.abc' });
    first.write('id: 1\ndata: {"n":1}\n\nid: 2\ndata: {"n":2}\n\n');
    first.end();
    const poll = await server.call(1);
    assert.equal(poll.url, 'http://chat.test/v1/stream/n1.abc?mode=poll');
    assert.equal(poll.headers['last-event-id'], '2');
    poll.respond(200).end(); // empty: the poll timed out
    const next = await server.call(2);
    assert.equal(next.headers['last-event-id'], '2');
    const body = next.respond(200);
    body.write('id: 3\ndata: {"n":3}\n\n');
    body.end();
    await messages(3);
    assert.deepEqual(received, ['{"n":1}', '{"n":2}', '{"n":3}']);
    assert.equal((await server.call(3)).headers['last-event-id'], '3');
    socket.close();
  });
});
