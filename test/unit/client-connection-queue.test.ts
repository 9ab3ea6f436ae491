import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Connection } from '../../src/client/connection.js';
import type { ClientError } from '../../src/client/errors.js';
import type { SocketLike } from '../../src/client/socket.js';

/**
 * A full device-message queue at the receiver is not this connection's rate:
 * a rate_limited reply naming an e2e.max_device_queue_* limit
 * must not pause every other request, even if a server sent retry_after_ms.
 * A genuine rate limit still does, and the request it refused (not handled
 * by the server) is written again after the pause.
 */

class FakeSocket implements SocketLike {
  readyState = 1;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { readonly data: unknown }) => void) | null = null;
  onclose: ((event: { readonly code: number; readonly reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  readonly sent: Array<Record<string, any>> = [];
  /** Answers each frame written. */
  answer: (frame: Record<string, any>) => unknown = () => undefined;

  send(data: string): void {
    const frame = JSON.parse(data) as Record<string, any>;
    this.sent.push(frame);
    const reply = this.answer(frame);
    if (reply) queueMicrotask(() => this.onmessage?.({ data: JSON.stringify(reply) }));
  }

  close(): void {}
}

async function connected(framesPerSecond = 1000): Promise<{ connection: Connection; socket: FakeSocket }> {
  const socket = new FakeSocket();
  const connection = new Connection({ url: 'ws://x', token: 't', openSocket: () => socket, requestTimeoutMs: 2000, heartbeatReplyTimeoutMs: 2000, onEvent: () => {}, onEnd: () => {} });
  socket.answer = (frame) =>
    frame.type === 'auth'
      ? { type: 'welcome', id: 'auth', protocol: 2, epoch: 'e', user: { id: 1 }, device_id: 2, heartbeat_interval_ms: 600_000, heartbeat_timeout_ms: 600_000,
          limits: { max_frame_bytes: 65536, max_body_bytes: 16384, frames_per_second: framesPerSecond, history_page_max: 100, max_group_members: 10, user_sends_per_second: 10, max_connections_per_device: 5 } }
      : undefined;
  const opened = connection.open(() => {});
  socket.onopen?.({});
  await opened;
  return { connection, socket };
}

function rateLimited(id: string, limit: string, retryAfterMs = 60_000) {
  return { type: 'error', id, error: { code: 'rate_limited', message: 'full', retryable: true, retry_after_ms: retryAfterMs, limit } };
}

describe('connection: rate_limited replies', () => {
  it('a full device queue (e2e.max_device_queue_bytes) rejects that request only: the next one is written at once', async () => {
    const { connection, socket } = await connected();
    socket.answer = (frame) => (frame.type === 'device_send' ? rateLimited(frame.id, 'e2e.max_device_queue_bytes') : frame.type === 'ping' ? undefined : { type: 'ok', id: frame.id });
    await assert.rejects(connection.request({ type: 'device_send', device_id: 3, payload: 'AA==' }), (error: ClientError) => error.code === 'rate_limited' && error.details?.limit === 'e2e.max_device_queue_bytes');
    const next = connection.request({ type: 'device_messages_ack', up_to: 1 });
    assert.equal(socket.sent.at(-1)?.type, 'device_messages_ack', 'written without a pause');
    await next;
    connection.close();
  });

  it('a connection rate limit pauses the requests that follow; the refused one goes out again first, those queued before keep their order', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
    const { connection, socket } = await connected(1);
    let refusals = 0;
    socket.answer = (frame) => {
      if (frame.type === 'device_send' && frame.payload === 'AA==' && refusals++ === 0) return rateLimited(frame.id, 'websocket.frames_per_second', 1000);
      return frame.type === 'ping' ? undefined : { type: 'ok', id: frame.id };
    };
    t.mock.timers.tick(1000);
    // One frame a second: the first send goes out, the next two wait in the queue when its refusal comes back.
    const replies = [
      connection.request({ type: 'device_send', device_id: 3, payload: 'AA==' }),
      connection.request({ type: 'device_send', device_id: 3, payload: 'BB==' }),
      connection.request({ type: 'device_messages_ack', up_to: 1 }),
    ];
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(refusals, 1, 'the first was refused');
    for (let i = 0; i < 4; i++) {
      t.mock.timers.tick(1000);
      // Each frame written is answered in a microtask, before the next second.
      await new Promise((resolve) => setImmediate(resolve));
    }
    for (const reply of replies) assert.equal((await reply).type, 'ok');
    const written = socket.sent.slice(1);
    // The server did not handle the refused frame: the same request, with the same id, comes again, before the others.
    assert.deepEqual(written.map((frame) => frame.payload ?? frame.type), ['AA==', 'AA==', 'BB==', 'device_messages_ack']);
    assert.equal(written[0]?.id, written[1]?.id);
    connection.close();
  });

  it('a request the rate limit keeps refusing fails with rate_limited after three resends', async () => {
    const { connection, socket } = await connected();
    socket.answer = (frame) => (frame.type === 'device_send' ? rateLimited(frame.id, 'websocket.frames_per_second', 1) : undefined);
    await assert.rejects(connection.request({ type: 'device_send', device_id: 3, payload: 'AA==' }), (error: ClientError) => error.code === 'rate_limited');
    assert.equal(socket.sent.filter((frame) => frame.type === 'device_send').length, 4);
    connection.close();
  });
});
