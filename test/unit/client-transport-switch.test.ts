import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Connection } from '../../src/client/connection.js';
import type { ClientError } from '../../src/client/errors.js';
import type { SocketLike } from '../../src/client/socket.js';
import type { TransportKind } from '../../src/client/transport-policy.js';
import { TransportSwitch } from '../../src/client/transport-switch.js';
import { FakeClock } from '../helpers/fake-clock.js';

/**
 * The transport switch with scripted sockets and a fake clock: the client
 * falls back to the stream, the WebSocket is tried again in the background,
 * and the test says what each socket does (opens, answers, is cut).
 */

class ScriptedSocket implements SocketLike {
  readyState = 0;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { readonly data: unknown }) => void) | null = null;
  onclose: ((event: { readonly code: number; readonly reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  readonly sent: Array<Record<string, any>> = [];
  closedWith: number | undefined;

  constructor(readonly kind: TransportKind) {}

  send(data: string): void {
    this.sent.push(JSON.parse(data) as Record<string, any>);
  }

  close(code = 1000): void {
    this.closedWith ??= code;
    this.readyState = 3;
  }

  /** Opens and is welcomed (the Connection writes auth on open; the server answers). */
  welcome(): void {
    this.readyState = 1;
    this.onopen?.({});
    assert.equal(this.sent[0]?.type, 'auth');
    this.receive({
      type: 'welcome', id: 'auth', protocol: 3, epoch: 'e', user: { id: 1 }, device_id: 2, heartbeat_interval_ms: 600_000, heartbeat_timeout_ms: 600_000,
      limits: { max_frame_bytes: 65536, max_body_bytes: 16384, frames_per_second: 1000, history_page_max: 100, max_group_members: 10, user_sends_per_second: 10, max_connections_per_device: 5 },
    });
  }

  receive(frame: Record<string, unknown>): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }

  /** Closed by the network (a proxy that kills it). */
  cut(): void {
    this.readyState = 3;
    this.onclose?.({ code: 1006, reason: '' });
  }
}

const RETRY = 60_000;

function world() {
  const clock = new FakeClock();
  const sockets: ScriptedSocket[] = [];
  const takeOvers: Connection[] = [];
  const transports: string[] = [];
  let ready: Connection | undefined;
  const transportSwitch = new TransportSwitch({
    server: 'http://chat.test', token: 't', transports: ['websocket', 'stream', 'poll'],
    websocketRetryMs: RETRY, connectTimeoutMs: 10_000, requestTimeoutMs: 600_000, heartbeatReplyTimeoutMs: 10_000, clock,
    openSocket: (kind) => {
      const socket = new ScriptedSocket(kind);
      sockets.push(socket);
      return socket;
    },
    ready: () => ready,
    onEvent: () => {},
    onEnd: (connection) => {
      if (connection === ready) ready = undefined;
    },
    takeOver: (connection) => {
      ready = connection;
      takeOvers.push(connection);
    },
    transportChanged: ({ transport }) => transports.push(transport),
  });
  const connect = (): Connection => transportSwitch.connect((connection) => (ready = connection));
  /** Two WebSockets cut before they open, then a stream that is welcomed: the client is on the fallback. */
  const onTheStream = (): { stream: Connection; socket: ScriptedSocket } => {
    connect();
    (sockets.at(-1) as ScriptedSocket).cut();
    connect();
    (sockets.at(-1) as ScriptedSocket).cut();
    const stream = connect();
    const socket = sockets.at(-1) as ScriptedSocket;
    assert.equal(socket.kind, 'stream');
    socket.welcome();
    assert.equal(ready, stream);
    return { stream, socket };
  };
  const stop = (): void => {
    transportSwitch.stop();
    ready?.close();
  };
  return { clock, sockets, takeOvers, transports, transportSwitch, onTheStream, stop, ready: () => ready };
}

describe('the transport switch', () => {
  it('switching back to the WebSocket keeps the fallback until the requests waiting on it are answered: no caller gets `disconnected`', async () => {
    const { clock, sockets, takeOvers, transportSwitch, onTheStream, stop, ready } = world();
    const { stream, socket: streamSocket } = onTheStream();
    // A request that is not repeated after a cut, in flight when the WebSocket takes over.
    const created = stream.request({ type: 'group_create', title: 'Team', members: [] });
    const frame = streamSocket.sent.at(-1) as Record<string, any>;
    assert.equal(frame.type, 'group_create');

    clock.advance(RETRY);
    const probeSocket = sockets.at(-1) as ScriptedSocket;
    assert.equal(probeSocket.kind, 'websocket', 'the background try of the WebSocket');
    probeSocket.welcome();
    clock.advance(3000);
    assert.equal(takeOvers.length, 1, 'the try took over');
    assert.equal(transportSwitch.transport, 'websocket');
    assert.notEqual(ready(), stream, 'new requests go to the WebSocket');
    assert.equal(streamSocket.closedWith, undefined, 'the fallback is not closed under a request in flight');

    streamSocket.receive({ type: 'thread', id: frame.id, thread: { id: 9 }, members: [] });
    const reply = await created.catch((error: ClientError) => error);
    assert.equal((reply as { type?: string }).type, 'thread', `the caller gets the server's reply, not ${String((reply as ClientError).code)}`);
    assert.equal(streamSocket.closedWith, 1000, 'closed once nothing waits on it');
    stop();
  });

  it('a fallback with nothing in flight is closed as soon as the WebSocket takes over', () => {
    const { clock, sockets, takeOvers, onTheStream, stop } = world();
    const { socket: streamSocket } = onTheStream();
    clock.advance(RETRY);
    (sockets.at(-1) as ScriptedSocket).welcome();
    clock.advance(3000);
    assert.equal(takeOvers.length, 1);
    assert.equal(streamSocket.closedWith, 1000);
    stop();
  });

  it('a WebSocket cut right after its welcome never takes over: the fallback goes on, no flapping', () => {
    const { clock, sockets, takeOvers, transports, transportSwitch, onTheStream, stop, ready } = world();
    const { stream, socket: streamSocket } = onTheStream();
    for (let round = 0; round < 3; round++) {
      clock.advance(RETRY);
      const probe = sockets.at(-1) as ScriptedSocket;
      assert.equal(probe.kind, 'websocket', `try ${round + 1}`);
      probe.welcome();
      clock.advance(50);
      probe.cut(); // a proxy that kills upgraded connections
      clock.advance(3000);
    }
    assert.deepEqual(takeOvers, []);
    assert.deepEqual(transports, ['stream'], 'the transport never left the stream');
    assert.equal(transportSwitch.transport, 'stream');
    assert.equal(ready(), stream);
    assert.equal(streamSocket.closedWith, undefined);
    stop();
  });
});
