import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { logIn, request, signUp } from '../helpers/http.js';
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
max_buffered_bytes = 16384
max_frame_bytes = 8192
[messages]
max_body_bytes = 4096
[stream]
keepalive_ms = 100
resume_frames = 16
poll_timeout_ms = 2000
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

    /** Ids received are 1..n, each once. */
    const assertEachIdOnce = (stream: StreamClient): void => {
      const ids = stream.arrivals.map((arrival) => arrival.id);
      assert.deepEqual(ids, ids.map((_, index) => index + 1), 'an id came twice or was skipped');
    };

    it('resumes a stream cut in the middle with Last-Event-ID: nothing lost and nothing twice', async () => {
      const { stream, ws, thread } = await pair();
      const texts = Array.from({ length: 10 }, (_, index) => `m${index}`);
      // Half before the cut, half while the client is away (they wait in the session's buffer).
      for (const text of texts.slice(0, 5)) await ws.expect({ type: 'send', thread_id: thread, client_msg_id: text, body: { text } }, 'ack');
      await stream.until(() => (stream.arrivals.filter((arrival) => arrival.frame.type === 'message').length >= 2 ? true : undefined), 'the first messages');
      stream.cut();
      for (const text of texts.slice(5)) await ws.expect({ type: 'send', thread_id: thread, client_msg_id: text, body: { text } }, 'ack');
      const resumed = await stream.resume();
      assert.equal(resumed.status, 200);
      assert.equal(resumed.headers.get('chatd-stream'), stream.sid);
      await stream.until(() => (stream.arrivals.filter((arrival) => arrival.frame.type === 'message').length >= 10 ? true : undefined), 'every message');
      const bodies = stream.arrivals.filter((arrival) => arrival.frame.type === 'message').map((arrival) => arrival.frame.message.body.text);
      assert.deepEqual(bodies, texts);
      assertEachIdOnce(stream);
      // The session lives on: it still sends and receives.
      await stream.expect({ type: 'send', thread_id: thread, client_msg_id: 'after', body: { text: 'after' } }, 'ack');
      assert.equal((await ws.nextEvent((frame: { type: string; message?: { body: { text: string } } }) => frame.message?.body.text === 'after')).type, 'message');
      stream.close();
      ws.close();
    });

    it('cuts the connection of a response a newer resume replaces, so that what it still held goes with it; the newer one carries on', async () => {
      const { stream, ws, thread } = await pair();
      stream.cut();
      const older = await stream.resumeRaw(stream.lastId, { mode: 'stream' });
      assert.equal(older.status, 200);
      const olderReader = (older.body as ReadableStream<Uint8Array>).getReader();
      await olderReader.read();
      const newer = await stream.resumeRaw(stream.lastId, { mode: 'stream' });
      assert.equal(newer.status, 200);
      // Cut, not ended: a response ended cleanly would be flushed first, however much it held for a client that never reads.
      await assert.rejects(async () => {
        for (;;) if ((await olderReader.read()).done) return;
      });
      const newerReader = (newer.body as ReadableStream<Uint8Array>).getReader();
      await ws.expect({ type: 'send', thread_id: thread, client_msg_id: 'after-cut', body: { text: 'after the cut' } }, 'ack');
      let text = '';
      while (!text.includes('after the cut')) text += new TextDecoder().decode((await newerReader.read()).value);
      await newerReader.cancel();
      ws.close();
    });

    it('refuses a resume from a frame no longer kept with 409 resume_failed, ends the session, and a new session brings what was missed', async () => {
      const { alice, stream, ws, thread } = await pair();
      const from = stream.lastId;
      const texts = Array.from({ length: 20 }, (_, index) => `lost${index}`);
      for (const text of texts) await ws.expect({ type: 'send', thread_id: thread, client_msg_id: text, body: { text } }, 'ack');
      await stream.until(() => (stream.arrivals.filter((arrival) => arrival.frame.type === 'message').length >= 20 ? true : undefined), 'the messages');
      stream.cut();
      // As if what came after `from` never reached the client: more than resume_frames (16) ago.
      const refused = await stream.resumeRaw(from, { mode: 'stream' });
      assert.equal(refused.status, 409);
      assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'resume_failed');
      assert.equal((await stream.post([{ type: 'ping', id: 'p' }])).status, 404, 'the session ended');
      // Never acknowledged, the messages went back to the inbox: the next session drains them.
      const next = await StreamClient.connect(server.url, alice.token);
      assert.deepEqual(
        next.inbox.map((frame) => frame.message.body.text),
        texts,
      );
      next.client.close();
      ws.close();
    });

    it('long-polls end to end: frames both ways, empty answers when idle, each frame once', async () => {
      const { stream, ws, thread } = await pair('poll');
      assert.equal(stream.mode, 'poll');
      await stream.expect({ type: 'send', thread_id: thread, client_msg_id: 'p1', body: { text: 'polled up' } }, 'ack');
      assert.deepEqual((await ws.nextEvent('message')).message.body, { text: 'polled up' });
      for (const text of ['one', 'two', 'three']) {
        await ws.expect({ type: 'send', thread_id: thread, client_msg_id: text, body: { text } }, 'ack');
        assert.deepEqual((await stream.nextEvent((frame) => frame.type === 'message' && frame.message.body.text === text)).message.body, { text });
      }
      // An idle poll is answered empty after poll_timeout_ms, and the client asks again.
      const responses = stream.ended;
      await stream.until(() => (stream.ended >= responses + 1 ? true : undefined), 'an empty poll answer');
      await ws.expect({ type: 'send', thread_id: thread, client_msg_id: 'late', body: { text: 'late' } }, 'ack');
      await stream.nextEvent((frame) => frame.type === 'message' && frame.message.body.text === 'late');
      assertEachIdOnce(stream);
      // A frame already fetched is not kept once a poll says it has it: an older Last-Event-ID is refused.
      const old = await stream.resumeRaw(1, { mode: 'poll' });
      assert.equal(old.status, 409);
      stream.close();
      ws.close();
    });

    it('closes a stream session whose client does not take its frames (slow consumer, 4005), and tells it on its next response', async () => {
      const { alice, stream, ws, thread } = await pair();
      stream.cut();
      const big = 'x'.repeat(1000);
      for (let index = 0; index < 40; index++) {
        const reply = await ws.request({ type: 'send', thread_id: thread, client_msg_id: `big${index}`, body: { text: big } });
        assert.equal(reply.type, 'ack');
      }
      // The registry's sweep finds what waits for the absent client over websocket.max_buffered_bytes.
      const devices = (line: Record<string, unknown>) => line.msg === 'slow consumer disconnected' && line.device === alice.deviceId;
      await server.waitForLog(devices, 20_000);
      const resumed = await stream.resume();
      assert.equal(resumed.status, 200);
      assert.equal((await stream.closed()).code, 4005);
      assert.equal(stream.closeEvent?.reason, 'slow_consumer');
      assert.equal((await stream.post([{ type: 'ping', id: 'p' }])).status, 404);
      ws.close();
    });

    it('ends the stream with event: close 4006 when the device is revoked', async () => {
      const { alice, stream, ws } = await pair();
      const revoked = await request(`${server.url}/v1/devices/${alice.deviceId}`, { method: 'DELETE', token: alice.token });
      assert.equal(revoked.status, 204);
      const close = await stream.closed();
      assert.equal(close.code, 4006);
      assert.equal(close.reason, 'device_revoked');
      await stream.until(() => (stream.ended >= 1 ? true : undefined), 'the end of the response');
      ws.close();
    });

    it('refuses bad input with clear errors and leaves the session it names undisturbed', async () => {
      const { bob, stream, ws, thread } = await pair();
      const codeOf = (text: string): string => (JSON.parse(text) as { error: { code: string } }).error.code;
      const unknown = await stream.post([{ type: 'ping', id: 'x' }], { sid: `${stream.sid}x` });
      assert.deepEqual([unknown.status, codeOf(unknown.text)], [404, 'stream_not_found']);
      const foreign = await stream.post([{ type: 'send', id: 'f', thread_id: thread, client_msg_id: 'foreign', body: { text: 'not mine' } }], { token: bob.token });
      assert.deepEqual([foreign.status, codeOf(foreign.text)], [404, 'stream_not_found']);
      const anonymous = await stream.post([{ type: 'ping', id: 'x' }], { token: null });
      assert.equal(anonymous.status, 401);
      const send = (index: number) => ({ type: 'send', id: `b${index}`, thread_id: thread, client_msg_id: `batch${index}`, body: { text: 'refused' } });
      const tooMany = await stream.post(Array.from({ length: 6 }, (_, index) => send(index)));
      assert.deepEqual([tooMany.status, codeOf(tooMany.text)], [413, 'payload_too_large']);
      // The POST limit: the larger of http.max_body_bytes (4096) and websocket.max_frame_bytes (8192) + 1024.
      const tooLarge = await stream.post([{ ...send(9), body: { text: 'y'.repeat(9300) } }]);
      assert.deepEqual([tooLarge.status, codeOf(tooLarge.text)], [413, 'payload_too_large']);
      const notArray = await stream.post({ type: 'ping', id: 'x' });
      assert.deepEqual([notArray.status, codeOf(notArray.text)], [400, 'invalid_json']);
      const notJson = await stream.post('[{');
      assert.deepEqual([notJson.status, codeOf(notJson.text)], [400, 'invalid_json']);
      const future = await stream.resumeRaw(stream.lastId + 99, { mode: 'stream' });
      assert.equal(future.status, 400);
      const futureBody = (await future.json()) as { error: { code: string; message: string } };
      assert.equal(futureBody.error.code, 'bad_request');
      assert.match(futureBody.error.message, /Last-Event-ID \d+ is after the last frame sent, \d+/);
      const alsoForeign = await stream.resumeRaw(0, { token: bob.token });
      assert.equal(alsoForeign.status, 404);
      const noAuth = await StreamClient.openRaw(server.url, [{ type: 'ping', id: 'x' }]);
      assert.deepEqual([noAuth.status, codeOf(await noAuth.text())], [400, 'bad_request']);
      const empty = await StreamClient.openRaw(server.url, []);
      assert.equal(empty.status, 400);
      const plainGet = await fetch(`${server.url}/v1/stream`);
      assert.equal(plainGet.status, 405);
      await plainGet.text();
      // The session carries on: nothing of the refused batches was handled, and it chats both ways.
      const ack = await stream.expect({ type: 'send', thread_id: thread, client_msg_id: 'ok', body: { text: 'still here' } }, 'ack');
      assert.equal(ack.seq, 1, 'no refused frame was handled');
      assert.deepEqual((await ws.nextEvent('message')).message.body, { text: 'still here' });
      await ws.expect({ type: 'send', thread_id: thread, client_msg_id: 'back', body: { text: 'back' } }, 'ack');
      await stream.nextEvent((frame) => frame.type === 'message' && frame.message.body.text === 'back');
      assertEachIdOnce(stream);
      stream.close();
      ws.close();
    });

    it('refuses a POST or resume whose token is not the session\'s as before the session-token shortcut: 401 for a bad token on any sid, 404 for another device', async () => {
      const { alice, bob, stream, ws, thread } = await pair();
      const codeOf = (text: string): string => (JSON.parse(text) as { error: { code: string } }).error.code;
      const ping = [{ type: 'ping', id: 'p' }];
      // One character off the session's own token (same length): refused as unknown, exactly as on a sid that does not exist.
      const last = alice.token.at(-1) === 'A' ? 'B' : 'A';
      const forged = `${alice.token.slice(0, -1)}${last}`;
      const onSession = await stream.post(ping, { token: forged });
      const onNothing = await stream.post(ping, { token: forged, sid: `${stream.sid}x` });
      assert.deepEqual([onSession.status, codeOf(onSession.text)], [401, 'unauthorized']);
      assert.equal(onSession.text, onNothing.text, 'a wrong token says nothing about the sid');
      const resumed = await stream.resumeRaw(stream.lastId, { token: forged });
      assert.equal(resumed.status, 401);
      await resumed.text();
      // A good token of another device, the same user's included: not this session.
      const second = await logIn(server.url, alice.name, 'correct horse', 'second');
      for (const token of [bob.token, second.token]) {
        const other = await stream.post([{ type: 'send', id: 'o', thread_id: thread, client_msg_id: `other-${token.slice(0, 6)}`, body: { text: 'not mine' } }], { token });
        assert.deepEqual([other.status, codeOf(other.text)], [404, 'stream_not_found']);
      }
      // The session's own token goes through, and nothing of the refused POSTs was handled.
      const ack = await stream.expect({ type: 'send', thread_id: thread, client_msg_id: 'mine', body: { text: 'mine' } }, 'ack');
      assert.equal(ack.seq, 1);
      // Revoked: the session closes, and its token is refused in full again.
      const revoked = await request(`${server.url}/v1/devices/${alice.deviceId}`, { method: 'DELETE', token: alice.token });
      assert.equal(revoked.status, 204);
      await stream.closed();
      const afterRevoke = await stream.post(ping);
      assert.deepEqual([afterRevoke.status, codeOf(afterRevoke.text)], [401, 'unauthorized']);
      ws.close();
    });

    it('takes a frame larger than http.max_body_bytes up to websocket.max_frame_bytes, as the WebSocket does', async () => {
      const { stream, ws, thread } = await pair();
      const text = 'z'.repeat(4060);
      const frame = { type: 'send', id: 'big', thread_id: thread, client_msg_id: 'big', body: { text } };
      assert.ok(JSON.stringify([frame]).length > 4096, 'the batch is over http.max_body_bytes');
      const posted = await stream.post([frame]);
      assert.equal(posted.status, 204, posted.text);
      assert.equal((await stream.nextEvent((reply) => reply.id === 'big')).type, 'ack');
      assert.equal((await ws.nextEvent('message')).message.body.text, text);
      stream.close();
      ws.close();
    });

    it('answers HEAD on /v1/stream and /v1/stream/<sid> with 405 and leaves the live stream alone', { timeout: 30_000 }, async () => {
      const { stream, ws, thread } = await pair();
      const responses = stream.ended;
      for (const path of [`/v1/stream/${stream.sid}`, '/v1/stream']) {
        const head = await fetch(`${server.url}${path}`, { method: 'HEAD', headers: { authorization: `Bearer ${stream.token}`, 'last-event-id': String(stream.lastId) } });
        assert.equal(head.status, 405, path);
        assert.ok(head.headers.get('allow'), `no Allow on ${path}`);
        assert.ok(!/HEAD/.test(head.headers.get('allow') ?? ''), `HEAD allowed on ${path}`);
      }
      // The frames after the HEADs still come down the stream the client has open.
      await ws.expect({ type: 'send', thread_id: thread, client_msg_id: 'after-head', body: { text: 'after head' } }, 'ack');
      await stream.until(() => (stream.arrivals.some((arrival) => arrival.frame.message?.body.text === 'after head') ? true : undefined), 'the message after the HEAD', 10_000);
      assert.equal(stream.ended, responses, 'a response of the session ended');
      assertEachIdOnce(stream);
      stream.close();
      ws.close();
    });

    it('keeps a lost poll answer fetchable: an answer carries at most resume_frames frames, and a repeat poll gets them again', async () => {
      const alice = await user();
      const bob = await user();
      const { socket: ws } = await connectAuthenticated(server.wsUrl, bob.token);
      const thread = (await ws.expect({ type: 'direct_open', user_id: alice.userId }, 'thread')).thread.id as number;
      const texts = Array.from({ length: 20 }, (_, index) => `inbox${index}`);
      for (const text of texts) await ws.expect({ type: 'send', thread_id: thread, client_msg_id: text, body: { text } }, 'ack');
      // The first poll (the open) carries the welcome and the inbox: more than resume_frames (16) frames.
      const opened = await StreamClient.openRaw(server.url, [{ type: 'auth', id: 'a', token: alice.token }], 'poll');
      assert.equal(opened.status, 200);
      const sid = opened.headers.get('chatd-stream') as string;
      const idsOf = (text: string): number[] => [...text.matchAll(/^id: (\d+)$/gm)].map((match) => Number(match[1]));
      const first = await opened.text();
      const firstIds = idsOf(first);
      assert.ok(firstIds.length > 0 && firstIds.length <= 16, `the first answer carried ${firstIds.length} frames`);
      // That answer is lost: the client polls again from 0 and gets the same frames.
      const poll = (after: number) =>
        fetch(`${server.url}/v1/stream/${sid}?mode=poll`, { headers: { authorization: `Bearer ${alice.token}`, 'last-event-id': String(after) } });
      const again = await poll(0);
      assert.equal(again.status, 200, 'a repeat of the first poll was refused');
      assert.equal(await again.text(), first);
      // Polling on brings the rest: every message once, in order.
      let text = first;
      let last = firstIds.at(-1) as number;
      while (!text.includes('inbox_done')) {
        const answer = await poll(last);
        assert.equal(answer.status, 200);
        const body = await answer.text();
        text += body;
        last = idsOf(body).at(-1) ?? last;
      }
      const bodies = [...text.matchAll(/"text":"(inbox\d+)"/g)].map((match) => match[1]);
      assert.deepEqual(bodies, texts);
      assert.deepEqual(idsOf(text), idsOf(text).map((_, index) => index + 1));
      await (await fetch(`${server.url}/v1/stream/${sid}`, { method: 'DELETE', headers: { authorization: `Bearer ${alice.token}` } })).text();
      ws.close();
    });

    it('takes frames posted right after the open, before the welcome, from the device that opened it', async () => {
      const alice = await user();
      const client = await StreamClient.open(server.url, alice.token, { more: [{ type: 'ping', id: 'in-open' }] });
      // Not waiting for the welcome: the session is matched by the open's token until it knows its device.
      const pong = await client.request({ type: 'ping' });
      assert.equal(pong.type, 'pong');
      const frames = client.arrivals.map((arrival) => arrival.frame.type);
      assert.equal(frames[0], 'welcome');
      assert.ok(frames.includes('pong'));
      client.close();
    });

    it('refuses a token that does not work down the stream, as the WebSocket does (error, then close 4002)', async () => {
      const client = await StreamClient.open(server.url, 'not-a-token');
      const error = await client.next();
      assert.equal(error.type, 'error');
      assert.equal((await client.closed()).code, 4002);
    });

    async function whoAmI(token: string): Promise<number> {
      const me = await request(`${server.url}/v1/me`, { token });
      return me.body.user.id as number;
    }
  });
}

/**
 * DELETE /v1/stream/<sid>: a client ends its session rather than leaving it to the heartbeat deadline
 * (20 s here, far beyond what any wait below allows). One connection per device, so a session that
 * lingers refuses the next one.
 */
for (const transport of transports('closing a stream session')) {
  describe(`closing a stream session (${transport})`, () => {
    let server: ServerProcess;
    before(async () => {
      const dir = tempDir();
      server = await startServer(['--data', `${dir}/data`, '--transport', transport, '--config', writeConfig(dir, `${CONFIG}[limits]\nmax_connections_per_device = 1\n`)]);
    });
    after(() => server.stop());

    const user = async (): Promise<{ token: string; userId: number; deviceId: number }> => signUp(server.url, `closer${++userCount}`);
    const codeOf = (text: string): string => (JSON.parse(text) as { error: { code: string } }).error.code;

    it('ends the session at once: its stream gets event: close 1000, later requests 404, and the device may connect again', async () => {
      const alice = await user();
      const { client: stream } = await StreamClient.connect(server.url, alice.token);
      const ended = await stream.end();
      assert.equal(ended.status, 204);
      const close = await stream.closed();
      assert.deepEqual([close.code, close.reason], [1000, 'normal']);
      await stream.until(() => (stream.ended >= 1 ? true : undefined), 'the end of the response');
      const post = await stream.post([{ type: 'ping', id: 'p' }]);
      assert.deepEqual([post.status, codeOf(post.text)], [404, 'stream_not_found']);
      const again = await stream.end();
      assert.deepEqual([again.status, codeOf(again.text)], [404, 'stream_not_found']);
      // Its connection slot is free (max_connections_per_device = 1): a new session and a WebSocket are let in now.
      const next = await StreamClient.connect(server.url, alice.token);
      assert.equal(next.welcome.type, 'welcome');
      assert.equal((await next.client.end()).status, 204);
      const socket = await connectAuthenticated(server.wsUrl, alice.token);
      assert.equal(socket.welcome.type, 'welcome');
      socket.socket.close();
    });

    it('refuses another device’s token (404) and no token (401), and the session carries on', async () => {
      const alice = await user();
      const bob = await user();
      const { client: stream } = await StreamClient.connect(server.url, alice.token);
      const socket = await connectAuthenticated(server.wsUrl, bob.token);
      const ws = socket.socket;
      const thread = (await stream.expect({ type: 'direct_open', user_id: bob.userId }, 'thread')).thread.id as number;
      const foreign = await stream.end({ token: bob.token });
      assert.deepEqual([foreign.status, codeOf(foreign.text)], [404, 'stream_not_found']);
      const anonymous = await stream.end({ token: null });
      assert.equal(anonymous.status, 401);
      const unknown = await stream.end({ sid: `${stream.sid}x` });
      assert.deepEqual([unknown.status, codeOf(unknown.text)], [404, 'stream_not_found']);
      await stream.expect({ type: 'send', thread_id: thread, client_msg_id: 'still', body: { text: 'still here' } }, 'ack');
      assert.deepEqual((await ws.nextEvent('message')).message.body, { text: 'still here' });
      await ws.expect({ type: 'send', thread_id: thread, client_msg_id: 'back', body: { text: 'back' } }, 'ack');
      await stream.nextEvent((frame) => frame.type === 'message' && frame.message.body.text === 'back');
      assert.equal(stream.closeEvent, undefined);
      assert.equal((await stream.end()).status, 204);
      ws.close();
    });

    it('hands what the session got live and did not acknowledge over to the inbox of the next session', async () => {
      const alice = await user();
      const bob = await user();
      const { client: stream } = await StreamClient.connect(server.url, alice.token);
      const socket = await connectAuthenticated(server.wsUrl, bob.token);
      const ws = socket.socket;
      const thread = (await stream.expect({ type: 'direct_open', user_id: bob.userId }, 'thread')).thread.id as number;
      await ws.expect({ type: 'send', thread_id: thread, client_msg_id: 'unacked', body: { text: 'never acked' } }, 'ack');
      await stream.nextEvent((frame) => frame.type === 'message' && frame.message.body.text === 'never acked');
      assert.equal((await stream.end()).status, 204);
      const next = await StreamClient.connect(server.url, alice.token);
      assert.deepEqual(next.inbox.map((frame) => frame.message.body.text), ['never acked']);
      await next.client.end();
      ws.close();
    });
  });
}

describe('the stream transport switched off', () => {
  it('answers /v1/stream with 404 when stream.enabled is false', async () => {
    const dir = tempDir();
    const server = await startServer(['--data', `${dir}/data`, '--transport', 'node', '--config', writeConfig(dir, `${CONFIG}\n`.replace('[stream]', '[stream]\nenabled = false'))]);
    try {
      const alice = await signUp(server.url, 'switchedoff');
      const response = await StreamClient.openRaw(server.url, [{ type: 'auth', id: 'a', token: alice.token }]);
      assert.equal(response.status, 404);
      await response.text();
    } finally {
      await server.stop();
    }
  });
});

for (const transport of transports('stream sessions at shutdown')) {
  describe(`stream sessions at shutdown (${transport})`, () => {
    it('ends every stream with event: close 1001 (going away) when the server stops', async () => {
      const dir = tempDir();
      const server = await startServer(['--data', `${dir}/data`, '--transport', transport, '--config', writeConfig(dir, CONFIG)]);
      try {
        const alice = await signUp(server.url, `shutdown${transport}`);
        const { client } = await StreamClient.connect(server.url, alice.token);
        const stopped = server.stop();
        const close = await client.closed();
        assert.deepEqual([close.code, close.reason], [1001, 'going_away']);
        assert.equal(await stopped, 0);
      } finally {
        await server.stop();
      }
    });
  });
}
