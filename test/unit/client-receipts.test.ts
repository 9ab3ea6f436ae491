import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { ChatClient } from '../../src/client/client.js';
import { ClientError } from '../../src/client/errors.js';
import type { SocketLike, WebSocketConstructor } from '../../src/client/socket.js';

/**
 * `client.receipts(threadId, seq)` ("message info") without a server: a fake
 * WebSocket answers as a server of a given protocol. A server older than
 * protocol 4 does not know the request: the client refuses it before
 * sending anything, with the code that server would answer. Also the
 * receipt of this user's own read, which protocol 4 sends after the read's
 * reply rather than before it.
 */

type Frame = Record<string, any>;

/** The sockets the client opened, and how the fake server answers each request. */
interface FakeServer {
  readonly sent: Frame[];
  protocol: number;
  /** The reply to a request, or nothing. */
  answer: (frame: Frame) => Frame | undefined;
  /** Sends an event on the open socket. */
  push: (frame: Frame) => void;
}

function fakeWebSocket(server: FakeServer): WebSocketConstructor {
  return class implements SocketLike {
    readyState = 0;
    onopen: ((event: unknown) => void) | null = null;
    onmessage: ((event: { readonly data: unknown }) => void) | null = null;
    onclose: ((event: { readonly code: number; readonly reason: string }) => void) | null = null;
    onerror: ((event: unknown) => void) | null = null;

    constructor(_url: string) {
      server.push = (frame) => this.onmessage?.({ data: JSON.stringify(frame) });
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
  const server: FakeServer = { sent: [], protocol, answer, push: () => undefined };
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

  it('a receipt of this user\'s own read that comes after the read_state reply (as protocol 4 sends it) leaves the exact count; one from another device moves it', async () => {
    /** The thread as the server has it: 10 messages, read up to `read`. */
    let read = 0;
    const thread = (): Frame => ({
      id: 7, kind: 'group', title: 'g', peer: null, created_at: 0, last_seq: 10, last_message: null, role: 'member', member: true, left_seq: null,
      read_seq: read, unread: 10 - read, muted: false, label: null, member_count: 3, e2e_required: false,
    });
    const ownRead = (seq: number): Frame => ({ type: 'receipt', thread_id: 7, user_id: 1, kind: 'read', seq });
    const { client, server } = await connectedTo(4, (frame) => {
      if (frame.type === 'thread_get') return { type: 'thread', id: frame.id, thread: thread(), members: [] };
      if (frame.type !== 'read') return undefined;
      read = frame.seq;
      return { type: 'read_state', id: frame.id, thread_id: 7, read_seq: read, unread: 10 - read, total_unread: 10 - read };
    });
    await client.thread(7);
    await client.markRead(7, 4);
    // The receipt of the move comes after the reply: the server publishes it at the end of its turn.
    server.push(ownRead(4));
    assert.equal(client.unread(7), 6);
    // Another device of this user read further: the count follows (not exact here: thread_get asks).
    const changed = client.once('thread', (change) => change.reason === 'read' && change.thread.read_seq === 8);
    read = 8;
    server.push(ownRead(8));
    await changed;
    assert.equal(client.unread(7), 2);
    assert.equal(server.sent.filter((frame) => frame.type === 'thread_get').length, 2, 'the first, and the one for the read made elsewhere: none for the receipt of this device\'s own read');
  });

  it('before start, rejects with closed', async () => {
    const client = new ChatClient({ server: 'http://chat.invalid', token: 't', WebSocket: fakeWebSocket({ sent: [], protocol: 4, answer: () => undefined, push: () => undefined }) });
    await assert.rejects(client.receipts(7, 12), (error: unknown) => error instanceof ClientError && error.code === 'closed');
  });
});
