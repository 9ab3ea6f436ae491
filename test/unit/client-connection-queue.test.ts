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

async function connected(): Promise<{ connection: Connection; socket: FakeSocket }> {
  const socket = new FakeSocket();
  const connection = new Connection({ url: 'ws://x', token: 't', openSocket: () => socket, requestTimeoutMs: 2000, heartbeatReplyTimeoutMs: 2000, onEvent: () => {}, onEnd: () => {} });
  socket.answer = (frame) =>
    frame.type === 'auth'
      ? { type: 'welcome', id: 'auth', protocol: 2, epoch: 'e', user: { id: 1 }, device_id: 2, heartbeat_interval_ms: 600_000, heartbeat_timeout_ms: 600_000,
          limits: { max_frame_bytes: 65536, max_body_bytes: 16384, frames_per_second: 1000, history_page_max: 100, max_group_members: 10, user_sends_per_second: 10, max_connections_per_device: 5 } }
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

  it('a connection rate limit pauses the requests that follow, and writes the refused one again after the pause', async () => {
    const { connection, socket } = await connected();
    let refusals = 0;
    socket.answer = (frame) => {
      if (frame.type !== 'device_send') return frame.type === 'ping' ? undefined : { type: 'ok', id: frame.id };
      // The server did not handle the refused frame: the same request, with the same id, comes again.
      return refusals++ === 0 ? rateLimited(frame.id, 'websocket.frames_per_second', 20) : { type: 'ok', id: frame.id };
    };
    const sent = connection.request({ type: 'device_send', device_id: 3, payload: 'AA==' });
    // The refusal arrives in a microtask; the next request is written only after the pause, behind the resend.
    await new Promise((resolve) => queueMicrotask(() => resolve(undefined)));
    const next = connection.request({ type: 'device_messages_ack', up_to: 1 });
    assert.notEqual(socket.sent.at(-1)?.type, 'device_messages_ack', 'held by the pause');
    assert.equal((await sent).type, 'ok');
    await next;
    const sends = socket.sent.filter((frame) => frame.type === 'device_send');
    assert.equal(sends.length, 2);
    assert.equal(sends[0]?.id, sends[1]?.id);
    assert.deepEqual(socket.sent.slice(-2).map((frame) => frame.type), ['device_send', 'device_messages_ack'], 'the resend goes first');
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
