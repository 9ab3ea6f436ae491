import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createHash } from 'node:crypto';
import { type Harness, MAX_BODY_BYTES, MAX_BUFFERED_BYTES, type MakeTransport, patternSha256, withTransport } from './transport-harness.js';
import { RawHttpClient, postPattern } from './transport-raw-client.js';
import { ResponseCutError } from '../../src/transport/types.js';

export type { MakeTransport };

const MIB = 1024 * 1024;
/** Big enough that the kernel's socket buffers (a few MB on loopback) cannot hide a transport that reads it all. */
const BIG = 64 * MIB + 12_345;
/** Waits on tens of megabytes: generous, for a loaded machine. */
const SLOW_MS = 60_000;

function until<T>(h: Harness, find: () => T | undefined, what: () => string): Promise<T> {
  return h.waiters.until(find, SLOW_MS, what);
}

/**
 * Gives the transport many turns of the event loop with socket I/O in each: `count` requests one
 * after another. A transport that read ahead regardless of backpressure would have read tens of
 * megabytes by the end; one that keeps to it cannot, however long it is given.
 */
async function roundTrips(h: Harness, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const response = await fetch(h.url('/echo'));
    await response.arrayBuffer();
  }
}

/** Resolves in a later turn of the event loop, outside whatever callback of the transport ran the code before. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * What every transport must do for the layers above it (src/transport/types.ts),
 * whatever socket library it adapts: run against uWebSockets.js and node:http + ws.
 * The session and the HTTP routes rely on exactly this and nothing more.
 */
export function transportContract(name: string, create: MakeTransport): void {
  describe(`transport contract: ${name}`, () => {
    it('upgrades on the WebSocket path only, and gives the connection its peer address and X-Forwarded-For', () =>
      withTransport(create, async (h) => {
        assert.equal(await h.upgradeStatus('/elsewhere'), 404, 'another path is HTTP, not a WebSocket');
        assert.equal(h.accepted.length, 0);
        const client = await h.connect({ 'x-forwarded-for': '203.0.113.9, 198.51.100.1' });
        assert.equal(h.accepted.length, 1);
        assert.equal(client.accepted.connection.remoteAddress, '127.0.0.1');
        assert.equal(client.accepted.connection.forwardedFor, '203.0.113.9, 198.51.100.1');
        const plain = await h.connect();
        assert.equal(plain.accepted.connection.forwardedFor, undefined);
      }));

    it('hands text frames to the listener in order, and sends text frames back in order', () =>
      withTransport(create, async (h) => {
        const client = await h.connect();
        const texts = ['first', '{"type":"ping","id":"1"}', 'ünïcødé 😀', 'x'.repeat(60_000)];
        for (const text of texts) client.ws.send(text);
        const seen = await client.accepted.until('text', texts.length);
        assert.deepEqual(
          seen.map((event) => event.text),
          texts,
        );
        for (const text of texts) assert.match(client.accepted.connection.send(text), /^(sent|buffered)$/);
        assert.deepEqual(await client.received(texts.length), texts);
      }));

    it('reports a binary frame as binary, never as text', () =>
      withTransport(create, async (h) => {
        const client = await h.connect();
        client.ws.send(Buffer.from('{"type":"ping","id":"1"}'));
        client.ws.send('after');
        await client.accepted.until('text');
        assert.deepEqual(
          client.accepted.events.map((event) => event.kind),
          ['binary', 'text'],
        );
      }));

    it('closes with the code and reason it is given, reports the close once, and drops sends after it', () =>
      withTransport(create, async (h) => {
        const client = await h.connect();
        client.accepted.connection.close(4005, 'slow consumer');
        assert.deepEqual(await client.closeEvent(), { code: 4005, reason: 'slow consumer' });
        await client.accepted.until('close');
        client.accepted.connection.close(1000, 'again');
        assert.equal(client.accepted.connection.send('late'), 'dropped');
        assert.equal(client.accepted.connection.bufferedAmount(), 0);
        // Another connection's round trip, so that a second report would have had its turn.
        const other = await h.connect();
        other.ws.send('marker');
        await other.accepted.until('text');
        assert.equal(client.accepted.of('close').length, 1);
        assert.deepEqual(client.accepted.of('close')[0], { kind: 'close', code: 4005, reason: 'slow consumer' });
      }));

    it('reports a connection closed by the client once, with its code and reason', () =>
      withTransport(create, async (h) => {
        const client = await h.connect();
        client.ws.close(4100, 'bye');
        assert.deepEqual(await client.accepted.until('close'), [{ kind: 'close', code: 4100, reason: 'bye' }]);
        await client.closeEvent();
        const other = await h.connect();
        other.ws.send('marker');
        await other.accepted.until('text');
        assert.equal(client.accepted.of('close').length, 1);
      }));

    it('reports a connection cut without a close frame once, as 1006', () =>
      withTransport(create, async (h) => {
        const client = await h.connect();
        client.ws.terminate();
        const [close] = await client.accepted.until('close');
        assert.equal(close?.code, 1006);
        const other = await h.connect();
        other.ws.send('marker');
        await other.accepted.until('text');
        assert.equal(client.accepted.of('close').length, 1);
      }));

    it('publishes a topic to its subscribers only, and stops after unsubscribe', () =>
      withTransport(create, async (h) => {
        const [a, b, c] = [await h.connect(), await h.connect(), await h.connect()];
        a.accepted.connection.subscribe('thread:1');
        b.accepted.connection.subscribe('thread:1');
        c.accepted.connection.subscribe('thread:2');
        h.transport.publish('thread:1', 'to one');
        h.transport.publish('thread:2', 'to two');
        assert.deepEqual(await a.received(1), ['to one']);
        assert.deepEqual(await b.received(1), ['to one']);
        assert.deepEqual(await c.received(1), ['to two'], 'a topic not followed sends nothing (it would have come first)');

        b.accepted.connection.unsubscribe('thread:1');
        b.accepted.connection.subscribe('user:2');
        h.transport.publish('thread:1', 'again');
        h.transport.publish('user:2', 'marker');
        assert.deepEqual(await a.received(2), ['to one', 'again']);
        assert.deepEqual(await b.received(2), ['to one', 'marker'], 'nothing after unsubscribe');

        h.transport.publish('nobody', 'lost');
        c.accepted.connection.close(1000, '');
        await c.accepted.until('close');
        h.transport.publish('thread:2', 'after close');
        h.transport.publish('thread:1', 'last');
        assert.deepEqual(await a.received(3), ['to one', 'again', 'last'], 'a closed subscriber does not hold the topic up');
      }));

    it('keeps the order of sends and publishes gathered in one turn: the ack before the fanout', () =>
      withTransport(create, async (h) => {
        const client = await h.connect();
        const { connection } = client.accepted;
        connection.subscribe('thread:1');
        const statuses: string[] = [];
        connection.gather(() => {
          statuses.push(connection.send('ack 1'));
          h.transport.publish('thread:1', 'message 1');
          statuses.push(connection.send('ack 2'));
          h.transport.publish('thread:1', 'message 2');
        });
        connection.send('after');
        assert.deepEqual(statuses, ['sent', 'sent']);
        assert.deepEqual(await client.received(5), ['ack 1', 'message 1', 'ack 2', 'message 2', 'after']);
      }));

    it('sends a frame published to a topic of the connection and a direct send after it in call order, outside any callback of the transport', () =>
      withTransport(create, async (h) => {
        const client = await h.connect();
        const { connection } = client.accepted;
        connection.subscribe('thread:1');
        // A turn later, as after a group commit: uWS queues the publish for the socket, and a direct send must flush it first.
        await nextTurn();
        h.transport.publish('thread:1', 'message');
        connection.send('receipt');
        h.transport.publish('thread:1', 'message 2');
        connection.send('receipt 2');
        assert.deepEqual(await client.received(4), ['message', 'receipt', 'message 2', 'receipt 2']);
      }));

    it("still sends a frame published to a connection's last topic just before it unsubscribes from it, and nothing published after", () =>
      withTransport(create, async (h) => {
        const client = await h.connect();
        const { connection } = client.accepted;
        connection.subscribe('thread:1');
        await nextTurn();
        // A removed member's last frame of the thread: uWS frees what a socket's topics queued with its last topic,
        // so the connection must hold a topic of its own across the unsubscribe.
        h.transport.publish('thread:1', 'member_removed');
        connection.unsubscribe('thread:1');
        h.transport.publish('thread:1', 'after removal');
        connection.send('direct');
        assert.deepEqual(await client.received(2), ['member_removed', 'direct']);
        connection.send('marker');
        assert.deepEqual(await client.received(3), ['member_removed', 'direct', 'marker'], 'nothing published after the unsubscribe');
      }));

    it('counts unsent bytes in bufferedAmount while the peer does not read, drops sends past the limit, and empties once it reads', () =>
      withTransport(create, async (h) => {
        const client = await h.connect();
        const { connection } = client.accepted;
        assert.equal(connection.bufferedAmount(), 0);
        client.ws.pause();
        const frame = 'x'.repeat(512 * 1024);
        let accepted = 0;
        let sawBuffered = false;
        // The kernel's socket buffers take some megabytes first; the loop is bounded well past them.
        for (let i = 0; i < 400; i++) {
          const status = connection.send(frame);
          if (status === 'dropped') break;
          accepted++;
          sawBuffered ||= status === 'buffered' || connection.bufferedAmount() > 0;
        }
        assert.ok(sawBuffered, 'backpressure shows before the limit');
        assert.ok(accepted < 400, 'a send past maxBufferedBytes is dropped');
        assert.ok(connection.bufferedAmount() >= MAX_BUFFERED_BYTES / 2, `bufferedAmount ${connection.bufferedAmount()} near the limit`);
        client.ws.resume();
        await client.receivedBytes(accepted * frame.length);
        assert.equal(client.bytes, accepted * frame.length, 'every frame not dropped arrives, whole');
        assert.equal(connection.bufferedAmount(), 0, 'nothing left once the peer has it all');
      }));

    it('passes HTTP requests through: method, path and query, headers and body in; status, headers and body out', async () =>
      withTransport(create, async (h) => {
        const response = await fetch(h.url('/echo?x=1&y=%C3%BC'), {
          method: 'POST',
          headers: { 'content-type': 'text/plain', 'x-test': 'value' },
          body: 'hello ü',
        });
        assert.equal(response.status, 201);
        assert.equal(response.headers.get('x-reply'), 'yes');
        assert.equal(response.headers.get('content-type'), 'application/json');
        assert.deepEqual(await response.json(), { method: 'POST', path: '/echo?x=1&y=%C3%BC', header: 'value', body: 'hello ü', remoteAddress: '127.0.0.1' });
        const get = await fetch(h.url('/echo'));
        assert.equal(get.status, 201);
        assert.equal(((await get.json()) as { method: string }).method, 'GET');
        const missing = await fetch(h.url('/nowhere'));
        assert.equal(missing.status, 404);
        assert.equal(await missing.text(), 'no such path');
      }));

    it('refuses a body over maxBodyBytes without calling the handler, and answers 500 when the handler throws', async () =>
      withTransport(create, async (h) => {
        const big = await fetch(h.url('/echo'), { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x'.repeat(MAX_BODY_BYTES + 1) });
        assert.equal(big.status, 413);
        await big.arrayBuffer();
        assert.equal(h.requests.length, 0);
        const failed = await fetch(h.url('/throw'));
        assert.equal(failed.status, 500);
        await failed.arrayBuffer();
        assert.equal(h.errors.length, 1, 'the error is reported, and the server carries on');
        assert.equal((await fetch(h.url('/echo'))).status, 201);
      }));
    it('streams a 64 MB request body to a streaming route whole and in many chunks, past maxBodyBytes, which still holds elsewhere', () =>
      withTransport(create, async (h) => {
        const { status, json } = await postPattern(h.port, '/stream/upload', BIG);
        assert.equal(status, 200);
        const answer = json as { bytes: number; chunks: number; sha256: string };
        assert.equal(answer.bytes, BIG);
        assert.equal(answer.sha256, patternSha256(BIG), 'the handler hashed the bytes the client sent, in order');
        assert.ok(answer.chunks >= 16, `the handler read the body as it came (${answer.chunks} chunks), not as one piece`);
        const empty = await postPattern(h.port, '/stream/upload', 0);
        assert.deepEqual(empty.json, { bytes: 0, chunks: 0, sha256: createHash('sha256').digest('hex') }, 'an empty streamed body ends at once');
        const refused = await fetch(h.url('/echo'), { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x'.repeat(MAX_BODY_BYTES + 1) });
        assert.equal(refused.status, 413, 'a route that does not stream keeps maxBodyBytes');
        await refused.arrayBuffer();
        assert.deepEqual(h.errors, []);
      }));

    it('stops reading the socket while the handler does not read the body, and delivers all of it once the handler reads', () =>
      withTransport(create, async (h) => {
        let release!: () => void;
        h.uploadGate = new Promise((resolve) => (release = resolve));
        const client = await RawHttpClient.open(h.port, () => h.waiters.notify());
        client.sendHead('POST', '/stream/upload', { 'content-length': BIG });
        const writing = client.writeBody(BIG);
        await until(h, () => h.uploads[0], () => 'the handler was not called');
        await until(h, () => (client.flushed > 0 ? true : undefined), () => 'the client wrote nothing');
        await roundTrips(h, 50);
        const flushed = client.flushed;
        assert.ok(flushed < BIG / 2, `the server took only what its buffers hold while nobody read: ${flushed} of ${BIG} bytes`);
        release();
        await writing;
        const upload = await until(h, () => (h.uploads[0]?.outcome ? h.uploads[0] : undefined), () => `the handler read ${h.uploads[0]?.bytes} bytes`);
        assert.equal(upload.outcome, 'whole');
        assert.equal(upload.bytes, BIG);
        assert.equal(upload.sha256, patternSha256(BIG));
        client.socket.destroy();
      }));

    for (const cut of ['closes', 'resets'] as const) {
      it(`errors the body stream when the client ${cut} the connection mid-body; the handler's read rejects and the server carries on`, () =>
        withTransport(create, async (h) => {
          const client = await RawHttpClient.open(h.port, () => h.waiters.notify());
          client.sendHead('POST', '/stream/upload', { 'content-length': BIG });
          const writing = client.writeBody(BIG);
          await until(h, () => ((h.uploads[0]?.bytes ?? 0) >= MIB ? true : undefined), () => `the handler read ${h.uploads[0]?.bytes ?? 0} bytes`);
          client.stop();
          if (cut === 'closes') client.socket.destroy();
          else client.socket.resetAndDestroy();
          await writing;
          const upload = await until(h, () => (h.uploads[0]?.outcome ? h.uploads[0] : undefined), () => 'the handler is still reading');
          assert.equal(upload.outcome, 'RequestAbortedError');
          assert.ok(upload.bytes < BIG);
          assert.equal((await fetch(h.url('/echo'))).status, 201);
          const next = await postPattern(h.port, '/stream/upload', 2 * MIB);
          assert.equal((next.json as { sha256: string }).sha256, patternSha256(2 * MIB));
          assert.deepEqual(h.errors, [], 'an abort is not an error of the server');
        }));
    }

    it('answers a streaming route that refuses before reading the body, and serves the next request', () =>
      withTransport(create, async (h) => {
        const client = await RawHttpClient.open(h.port, () => h.waiters.notify());
        client.sendHead('POST', '/stream/refuse', { 'content-length': BIG });
        void client.writeBody(256 * 1024);
        assert.equal(await until(h, () => client.responseStatus(), () => 'no answer'), 413);
        client.stop();
        client.socket.destroy();
        const next = await postPattern(h.port, '/stream/upload', MIB);
        assert.equal(next.status, 200);
        assert.deepEqual(h.errors, []);
      }));

    it('streams a 64 MB response that has a Content-Length whole; HEAD sends its headers only', () =>
      withTransport(create, async (h) => {
        const response = await fetch(h.url(`/stream/download?bytes=${BIG}`));
        assert.equal(response.status, 200);
        assert.equal(response.headers.get('content-length'), String(BIG));
        const hash = createHash('sha256');
        let bytes = 0;
        for await (const chunk of response.body as ReadableStream<Uint8Array>) {
          hash.update(chunk);
          bytes += chunk.byteLength;
        }
        assert.equal(bytes, BIG);
        assert.equal(hash.digest('hex'), patternSha256(BIG));
        const pulled = h.pulled;
        const head = await fetch(h.url(`/stream/download?bytes=${BIG}`), { method: 'HEAD' });
        assert.equal(head.status, 200);
        assert.equal(head.headers.get('content-length'), String(BIG));
        assert.equal((await head.arrayBuffer()).byteLength, 0);
        assert.ok(h.pulled - pulled <= 64 * 1024, 'HEAD reads at most the chunk a stream makes ready by itself, not the body');
        assert.deepEqual(h.errors, []);
      }));

    it('reads a response no further ahead of a client that reads nothing than the socket buffers hold, then sends the rest', () =>
      withTransport(create, async (h) => {
        const client = await RawHttpClient.open(h.port, () => h.waiters.notify());
        client.socket.pause();
        client.sendHead('GET', `/stream/download?bytes=${BIG}`);
        await until(h, () => (h.pulled > 0 ? true : undefined), () => 'the transport pulled nothing');
        await roundTrips(h, 50);
        const pulled = h.pulled;
        assert.ok(pulled < BIG / 2, `the transport pulled ${pulled} of ${BIG} bytes for a client that reads nothing`);
        client.socket.resume();
        await until(h, () => (client.bodyBytes >= BIG ? true : undefined), () => `the client has ${client.bodyBytes} of ${BIG} bytes`);
        assert.equal(client.responseStatus(), 200);
        assert.equal(client.bodyBytes, BIG);
        assert.equal(client.bodySha256(), patternSha256(BIG));
        client.socket.destroy();
      }));

    it("cancels a streamed response's body when the client goes away, and carries on", () =>
      withTransport(create, async (h) => {
        const client = await RawHttpClient.open(h.port, () => h.waiters.notify());
        client.sendHead('GET', `/stream/download?bytes=${BIG}`);
        await until(h, () => (client.bodyBytes >= MIB ? true : undefined), () => `the client has ${client.bodyBytes} bytes`);
        client.socket.destroy();
        await until(h, () => (h.cancelledDownloads === 1 ? true : undefined), () => 'the body was not cancelled');
        assert.ok(h.pulled < BIG);
        assert.equal((await fetch(h.url('/echo'))).status, 201);
        assert.deepEqual(h.errors, []);
      }));

    it('writes a text/event-stream response of unknown length chunk by chunk as its body yields, and ends it when the body ends', () =>
      withTransport(create, async (h) => {
        const response = await fetchEvents(h);
        assert.equal(response.status, 200);
        assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
        assert.equal(response.headers.get('content-length'), null);
        const controller = h.eventStreams[0] as ReadableStreamDefaultController<Uint8Array>;
        const reader = (response.body as ReadableStream<Uint8Array>).getReader();
        const decoder = new TextDecoder();
        let text = '';
        // Each chunk must arrive while the body is still open: a transport that buffered it to the end would never answer.
        for (const event of ['data: two\n\n', 'data: three\n\n']) {
          controller.enqueue(new TextEncoder().encode(event));
          while (!text.endsWith(event)) {
            const { done, value } = await reader.read();
            assert.equal(done, false, 'the body ended early');
            text += decoder.decode(value, { stream: true });
          }
        }
        assert.equal(text, 'data: one\n\ndata: two\n\ndata: three\n\n');
        controller.close();
        assert.equal((await reader.read()).done, true);
        assert.equal((await fetch(h.url('/echo'))).status, 201);
        assert.deepEqual(h.errors, []);
      }));

    it('reads an event stream no further ahead of a client that reads nothing than the socket buffers hold, then sends more as it reads', () =>
      withTransport(create, async (h) => {
        const client = await RawHttpClient.open(h.port, () => h.waiters.notify());
        client.socket.pause();
        client.sendHead('GET', '/stream/events?mode=flood');
        await until(h, () => (h.eventBytesPulled > 0 ? true : undefined), () => 'the transport pulled nothing');
        await roundTrips(h, 50);
        const pulled = h.eventBytesPulled;
        assert.ok(pulled < 48 * MIB, `the transport pulled ${pulled} bytes of an endless stream for a client that reads nothing`);
        client.socket.resume();
        await until(h, () => (client.bodyBytes >= pulled + 8 * MIB ? true : undefined), () => `the client has ${client.bodyBytes} bytes`);
        assert.equal(client.responseStatus(), 200);
        client.socket.destroy();
        await until(h, () => (h.cancelledEventStreams === 1 ? true : undefined), () => 'the endless body was not cancelled');
      }));

    it('answers HEAD of an event stream with its headers only and cancels its body, which may never end', () =>
      withTransport(create, async (h) => {
        const answer = fetch(h.url('/stream/events'), { method: 'HEAD' });
        // Nothing is ever written to this body: a transport that read it whole would neither cancel it nor answer.
        await until(h, () => (h.cancelledEventStreams === 1 ? true : undefined), () => 'the event stream of a HEAD was not cancelled');
        const head = await answer;
        assert.equal(head.status, 200);
        assert.match(head.headers.get('content-type') ?? '', /^text\/event-stream/);
        assert.equal(await head.text(), '');
        assert.equal((await fetch(h.url('/echo'))).status, 201);
        assert.deepEqual(h.errors, []);
      }));

    it('cuts the connection of an event stream its handler errors with ResponseCutError, without reporting it, and carries on', () =>
      withTransport(create, async (h) => {
        const response = await fetchEvents(h);
        const controller = h.eventStreams[0] as ReadableStreamDefaultController<Uint8Array>;
        const reader = (response.body as ReadableStream<Uint8Array>).getReader();
        assert.equal(new TextDecoder().decode((await reader.read()).value), 'data: one\n\n');
        controller.error(new ResponseCutError());
        // Cut, not ended: the client sees the connection fail, as after a network cut (a clean end would say the stream is over).
        await assert.rejects(async () => {
          for (;;) if ((await reader.read()).done) return;
        });
        assert.equal((await fetch(h.url('/echo'))).status, 201);
        assert.deepEqual(h.errors, []);
      }));

    it('cancels an idle event stream as soon as the client goes away, and carries on', () =>
      withTransport(create, async (h) => {
        const abort = new AbortController();
        const response = await fetchEvents(h, abort.signal);
        const reader = (response.body as ReadableStream<Uint8Array>).getReader();
        assert.equal(new TextDecoder().decode((await reader.read()).value), 'data: one\n\n');
        abort.abort();
        await reader.read().catch(() => undefined);
        // Nothing more is written to it: only the client's going away can end it.
        await until(h, () => (h.cancelledEventStreams === 1 ? true : undefined), () => 'the idle event stream was not cancelled');
        assert.equal((await fetch(h.url('/echo'))).status, 201);
        assert.deepEqual(h.errors, []);
      }));
  });
}

/** Opens GET /stream/events (manual) and writes its first chunk, so that the headers go out. */
async function fetchEvents(h: Harness, signal?: AbortSignal): Promise<Response> {
  const index = h.eventStreams.length;
  const pending = fetch(h.url('/stream/events'), signal ? { signal } : {});
  const controller = await until(h, () => h.eventStreams[index], () => 'the handler made no event stream');
  controller.enqueue(new TextEncoder().encode('data: one\n\n'));
  return pending;
}
