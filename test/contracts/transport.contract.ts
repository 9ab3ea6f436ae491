import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_BODY_BYTES, MAX_BUFFERED_BYTES, type MakeTransport, withTransport } from './transport-harness.js';

export type { MakeTransport };

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
  });
}
