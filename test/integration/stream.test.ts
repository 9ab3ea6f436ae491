import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request, signUp } from '../helpers/http.js';
import { type ServerProcess, startServer } from '../helpers/processes.js';
import { StreamClient } from '../helpers/stream.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { transports } from '../helpers/transports.js';
import { connectAuthenticated } from '../helpers/ws.js';

const CONFIG = `
[accounts]
registration = "open"
[rate_limit]
login_per_address = 100000
[websocket]
frames_per_second = 500
heartbeat_interval_ms = 1000
heartbeat_timeout_ms = 20000
[stream]
keepalive_ms = 100
resume_frames = 16
poll_timeout_ms = 400
max_batch_frames = 5
[http]
max_body_bytes = 4096
`;

let userCount = 0;

/** The /v1/stream transport end to end, against the real server, on both socket transports. */
for (const transport of transports('the stream transport')) {
  describe(`the stream transport (${transport})`, () => {
    let server: ServerProcess;
    before(async () => {
      const dir = tempDir();
      server = await startServer(['--data', `${dir}/data`, '--transport', transport, '--config', writeConfig(dir, CONFIG)]);
    });
    after(() => server.stop());

    const user = async (): Promise<{ token: string; userId: number; deviceId: number; name: string }> => {
      const name = `user${++userCount}`;
      return { ...(await signUp(server.url, name)), name };
    };

    /** A stream client and a WebSocket client with a direct thread between them. */
    const pair = async (mode: 'stream' | 'poll' = 'stream') => {
      const alice = await user();
      const bob = await user();
      const streamed = await StreamClient.connect(server.url, alice.token, mode);
      const socket = await connectAuthenticated(server.wsUrl, bob.token);
      const thread = (await streamed.client.expect({ type: 'direct_open', user_id: bob.userId }, 'thread')).thread.id as number;
      return { alice, bob, stream: streamed.client, welcome: streamed.welcome, ws: socket.socket, thread };
    };

    it('opens a session with a POST: the event-stream headers, the session id, the welcome and the inbox', async () => {
      const alice = await user();
      const response = await StreamClient.openRaw(server.url, [{ type: 'auth', id: 'a', token: alice.token }]);
      assert.equal(response.status, 200);
      assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream; charset=utf-8$/);
      assert.equal(response.headers.get('cache-control'), 'no-store');
      assert.equal(response.headers.get('x-accel-buffering'), 'no');
      assert.match(response.headers.get('chatd-stream') ?? '', /^[\w-]+\.[\w-]{22}$/);
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      let text = '';
      while (!text.includes('inbox_done')) {
        const { value, done } = await reader.read();
        assert.equal(done, false);
        text += new TextDecoder().decode(value);
      }
      assert.match(text, /^: stream\n\nid: 1\ndata: \{"type":"welcome","id":"a",[^\n]*\n\nid: 2\ndata: \{"type":"inbox_done","count":0,"overflow":false\}\n\n/);
      await reader.cancel();
    });

    it('carries messages both ways between a stream session and a WebSocket, in a direct thread and a group', async () => {
      const { bob, stream, ws, thread } = await pair();
      const ack = await stream.expect({ type: 'send', thread_id: thread, client_msg_id: 'm1', body: { text: 'hi bob' } }, 'ack');
      assert.equal(ack.seq, 1);
      assert.deepEqual((await ws.nextEvent('message')).message.body, { text: 'hi bob' });
      await ws.expect({ type: 'send', thread_id: thread, client_msg_id: 'm2', body: { text: 'hi alice' } }, 'ack');
      const got = await stream.nextEvent((frame) => frame.type === 'message' && frame.message.seq === 2);
      assert.deepEqual(got.message.body, { text: 'hi alice' });
      const carol = await user();
      const group = (await ws.expect({ type: 'group_create', title: 'Team', members: [await whoAmI(stream.token), carol.userId] }, 'thread')).thread.id;
      await stream.nextEvent((frame) => frame.type === 'message' && frame.message.thread_id === group && frame.message.kind === 'system');
      await ws.nextEvent((frame: { type: string; message?: { thread_id: number } }) => frame.type === 'message' && frame.message?.thread_id === group);
      await stream.expect({ type: 'send', thread_id: group, client_msg_id: 'g1', body: { text: 'to the team' } }, 'ack');
      assert.deepEqual((await ws.nextEvent((frame: { type: string; message?: { thread_id: number; kind: string } }) => frame.type === 'message' && frame.message?.thread_id === group && frame.message?.kind !== 'system')).message.body, { text: 'to the team' });
      await ws.expect({ type: 'send', thread_id: group, client_msg_id: 'g2', body: { text: 'from bob' } }, 'ack');
      const fromBob = await stream.nextEvent((frame) => frame.type === 'message' && frame.message.thread_id === group && frame.message.sender_id === bob.userId);
      assert.deepEqual(fromBob.message.body, { text: 'from bob' });
      // Pings come up as POSTs and are answered down the stream; an idle stream gets keepalive comments.
      const pong = await stream.request({ type: 'ping' });
      assert.equal(pong.type, 'pong');
      const comments = stream.comments;
      await stream.until(() => (stream.comments >= comments + 2 ? true : undefined), 'keepalive comments');
      stream.close();
      ws.close();
    });

    async function whoAmI(token: string): Promise<number> {
      const me = await request(`${server.url}/v1/me`, { token });
      return me.body.user.id as number;
    }
  });
}
