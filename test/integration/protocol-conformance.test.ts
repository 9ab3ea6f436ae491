import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { signUp } from '../helpers/http.js';
import { type ServerProcess, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { transports } from '../helpers/transports.js';
import { TestSocket, connectAuthenticated } from '../helpers/ws.js';

/**
 * Rules of docs/protocol.md that a client author found hard to pin down,
 * checked over the real server: how refused frames spend the rate limit, which
 * id an oversized frame's error carries, what counts as a heartbeat.
 */

const MAX_FRAME_BYTES = 1024;

for (const transport of transports('protocol conformance')) {
  describe(`docs/protocol.md against the server on the ${transport} transport`, () => {
    let server: ServerProcess;
    let token: string;

    before(async () => {
      const dir = tempDir();
      // One frame per second with bursts of two: the auth frame and one more pass, the next is over the limit
      // (a token comes back only a whole second later).
      const config = `
[accounts]
registration = "open"
[messages]
max_body_bytes = ${MAX_FRAME_BYTES - 512}
[websocket]
max_frame_bytes = ${MAX_FRAME_BYTES}
frames_per_second = 1
heartbeat_interval_ms = 300
heartbeat_timeout_ms = 900
`;
      server = await startServer(['--data', `${dir}/data`, '--transport', transport, '--config', writeConfig(dir, config)]);
      token = (await signUp(server.url, 'alice')).token;
    });
    after(() => server.stop());

    const refusedKinds: Array<[string, (socket: TestSocket) => void, string]> = [
      ['a binary frame', (socket) => socket.ws.send(Buffer.from([1, 2, 3]), { binary: true }), 'invalid_frame'],
      ['a frame that is not JSON', (socket) => socket.send('{nope'), 'invalid_frame'],
      ['a frame without an id', (socket) => socket.send({ type: 'ping' }), 'invalid_field'],
      ['a frame of an unknown type', (socket) => socket.send({ type: 'shout', id: 's' }), 'unknown_type'],
      ['a frame with a bad field', (socket) => socket.send({ type: 'history', id: 'h', thread_id: 1, before: 5, after: 2 }), 'invalid_field'],
      ['a frame over max_frame_bytes', (socket) => socket.send({ type: 'ping', id: 'big', pad: 'x'.repeat(MAX_FRAME_BYTES) }), 'payload_too_large'],
    ];
    for (const [kind, sendIt, code] of refusedKinds) {
      it(`counts ${kind} towards the rate limit: refused, it still spends a frame`, async () => {
        const { socket } = await connectAuthenticated(server.wsUrl, token);
        sendIt(socket);
        assert.equal((await socket.next()).error?.code, code);
        const next = await socket.call({ type: 'ping', id: 'after' });
        // Refused by the limit before it is handled, the frame is still answered by its id.
        assert.deepEqual([next.type, next.id, next.error?.code], ['error', 'after', 'rate_limited'], 'the auth frame and the refused one used the burst of two');
        assert.ok(next.error.retry_after_ms >= 1000);
        socket.close();
      });
    }

    it('counts frames sent before auth towards the rate limit', async () => {
      const socket = await TestSocket.connect(server.wsUrl);
      assert.equal((await socket.call({ type: 'ping', id: 'early' })).error.code, 'unauthorized');
      assert.equal((await socket.call({ type: 'ping', id: 'early again' })).error.code, 'unauthorized');
      const auth = await socket.call({ type: 'auth', id: 'a', token });
      assert.deepEqual([auth.id, auth.error?.code], ['a', 'rate_limited']);
      // Over the limit and unreadable, or too long to be worth parsing (over 1,024 characters): no id to answer by.
      socket.send('{nope');
      const unreadable = await socket.next();
      assert.deepEqual([unreadable.id, unreadable.error?.code], [null, 'rate_limited']);
      socket.send({ type: 'ping', id: 'long', pad: 'x'.repeat(1024) });
      const long = await socket.next();
      assert.deepEqual([long.id, long.error?.code], [null, 'rate_limited']);
      socket.close();
    });

    it('answers an oversized frame that is valid JSON with its id, so the client knows which request failed', async () => {
      const { socket } = await connectAuthenticated(server.wsUrl, token);
      const reply = await socket.call({ type: 'ping', id: 'too big', pad: 'x'.repeat(MAX_FRAME_BYTES) });
      assert.deepEqual([reply.type, reply.id, reply.error.code], ['error', 'too big', 'payload_too_large']);
      socket.close();
    });

    it('does not count WebSocket-level pings and pongs as heartbeats: only frames do', { timeout: 10_000 }, async () => {
      const { socket } = await connectAuthenticated(server.wsUrl, token);
      let pongsBack = 0;
      socket.ws.on('pong', () => pongsBack++);
      // Control frames at three times the heartbeat rate, and no text frame.
      const beat = setInterval(() => {
        socket.ws.ping();
        socket.ws.pong();
      }, 100);
      try {
        const closed = await socket.closed;
        assert.equal(closed.code, 4003);
      } finally {
        clearInterval(beat);
      }
      assert.ok(pongsBack > 0, 'the server read the control frames (it answered the pings)');
    });
  });
}
