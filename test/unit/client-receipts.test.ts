import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { ChatClient } from '../../src/client/client.js';
import { ClientError } from '../../src/client/errors.js';
import type { SocketLike, WebSocketConstructor } from '../../src/client/socket.js';

/**
 * `client.receipts(threadId, seq)` ("message info") without a server: a fake
 * WebSocket answers as a server of a given protocol. A server older than
 * protocol 4 does not know the request: the client refuses it before
 * sending anything, with the code that server would answer.
 */

type Frame = Record<string, any>;

/** The sockets the client opened, and how the fake server answers each request. */
interface FakeServer {
  readonly sent: Frame[];
  protocol: number;
  answer: (frame: Frame) => Frame | undefined;
}

function fakeWebSocket(server: FakeServer): WebSocketConstructor {
  return class implements SocketLike {
    readyState = 0;
    onopen: ((event: unknown) => void) | null = null;
    onmessage: ((event: { readonly data: unknown }) => void) | null = null;
    onclose: ((event: { readonly code: number; readonly reason: string }) => void) | null = null;
    onerror: ((event: unknown) => void) | null = null;

    constructor(_url: string) {
      queueMicrotask(() => {
        this.readyState = 1;
        this.onopen?.({});
      });
    }

    send(data: string): void {
      const frame = JSON.parse(data) as Frame;
      server.sent.push(frame);
      const reply = frame.type === 'auth' ? welcome(server.protocol) : server.answer(frame);
      if (reply) queueMicrotask(() => this.onmessage?.({ data: JSON.stringify(reply) }));
    }

    close(): void {
      this.readyState = 3;
    }
  };
}

function welcome(protocol: number): Frame {
  return {
    type: 'welcome', id: 'auth', protocol, epoch: 'e', user: { id: 1, username: 'alice', display_name: 'alice' }, device_id: 2,
    heartbeat_interval_ms: 600_000, heartbeat_timeout_ms: 600_000,
    limits: { max_frame_bytes: 65536, max_body_bytes: 16384, frames_per_second: 1000, history_page_max: 100, max_group_members: 10, user_sends_per_second: 10, max_connections_per_device: 5 },
  };
}

const clients: ChatClient[] = [];

/** A started client on a fake server of `protocol`, once it is connected (welcomed; the catch-up is not needed). */
async function connectedTo(protocol: number, answer: FakeServer['answer']): Promise<{ client: ChatClient; server: FakeServer }> {
  const server: FakeServer = { sent: [], protocol, answer };
  const client = new ChatClient({ server: 'http://chat.invalid', token: 't', WebSocket: fakeWebSocket(server), transports: ['websocket'], requestTimeoutMs: 2000 });
  clients.push(client);
  const syncing = client.once('state', (change) => change.state === 'syncing');
  await client.start();
  await syncing;
  return { client, server };
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
});

describe('client.receipts', () => {
  it('asks the server with a receipts request and resolves with the three lists of user ids', async () => {
    const { client, server } = await connectedTo(4, (frame) =>
      frame.type === 'receipts' ? { type: 'receipts', id: frame.id, thread_id: frame.thread_id, seq: frame.seq, read: [3], delivered: [4, 5], pending: [6] } : undefined,
    );
    assert.deepEqual(await client.receipts(7, 12), { read: [3], delivered: [4, 5], pending: [6] });
    const asked = server.sent.filter((frame) => frame.type === 'receipts');
    assert.deepEqual(asked.map(({ id: _id, ...frame }) => frame), [{ type: 'receipts', thread_id: 7, seq: 12 }]);
  });

  it('rejects with the server\'s error and its code', async () => {
    const { client } = await connectedTo(4, (frame) =>
      frame.type === 'receipts' ? { type: 'error', id: frame.id, error: { code: 'not_found', message: 'no message 12 in thread 7', retryable: false } } : undefined,
    );
    await assert.rejects(client.receipts(7, 12), (error: unknown) => error instanceof ClientError && error.code === 'not_found' && !error.retryable);
  });

  it('on a server older than protocol 4, rejects with unknown_type naming the versions, and sends nothing', async () => {
    const { client, server } = await connectedTo(3, () => assert.fail('nothing should be asked'));
    await assert.rejects(
      client.receipts(7, 12),
      (error: unknown) => error instanceof ClientError && error.code === 'unknown_type' && !error.retryable && /protocol 3/.test(error.message) && /protocol 4/.test(error.message),
    );
    assert.deepEqual(server.sent.filter((frame) => frame.type === 'receipts'), []);
  });

  it('before start, rejects with closed', async () => {
    const client = new ChatClient({ server: 'http://chat.invalid', token: 't', WebSocket: fakeWebSocket({ sent: [], protocol: 4, answer: () => undefined }) });
    await assert.rejects(client.receipts(7, 12), (error: unknown) => error instanceof ClientError && error.code === 'closed');
  });
});
