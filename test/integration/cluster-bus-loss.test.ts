import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CloseCodes } from '../../src/errors.js';
import { type Cluster, startCluster } from '../helpers/cluster.js';
import { DeviceStore, GapFillingSocket } from '../helpers/gap-fill.js';
import { logIn, signUp } from '../helpers/http.js';
import { TcpProxy } from '../helpers/proxy.js';
import { preferredTransport } from '../helpers/transports.js';
import { type Connected, type TestSocket, connectAuthenticated } from '../helpers/ws.js';

/**
 * The bus may lose a publication; the client loses nothing (issue 19,
 * docs/scaling.md): node B (1) reaches Redis through a TCP proxy that the test
 * cuts while a user on node A (0) sends. B's clients are written as
 * docs/protocol.md tells clients to be ("Gap fill", "Reconnect after being
 * offline"): a GapFillingSocket over a DeviceStore that outlives connections.
 * And a device moved to another node by a reconnect gets its inbox there,
 * also when the node it left still holds its connection. The heartbeat is the
 * default (2 s): each cut lasts a few of Redis's reconnection attempts (under a
 * second), well within the three beats after which node A would take node B for
 * dead (then B closes its connections when it is back; its clients reconnect:
 * the chaos test covers that path, after its Redis restart).
 */

const A = 0;
const B = 1;
type Frame = any;

describe(`cluster: messages lost on the bus are not lost for the client (${preferredTransport})`, () => {
  let cluster: Cluster;
  /** Between node B and Redis. */
  let busProxy: TcpProxy;
  let names = 0;

  before(async () => {
    cluster = await startCluster({
      nodes: 2,
      transport: preferredTransport,
      busUrl: async (node, redis) => {
        if (node !== B) return redis.url;
        busProxy = await TcpProxy.start(redis.port);
        return `redis://127.0.0.1:${busProxy.port}`;
      },
      config: `
[accounts]
registration = "open"
[rate_limit]
login_per_address = 100000
[websocket]
frames_per_second = 100000
[log]
level = "debug"
`,
    });
  });
  after(async () => {
    await cluster.stop();
    await busProxy?.close();
  });

  interface Device {
    readonly token: string;
    readonly userId: number;
    readonly deviceId: number;
    readonly store: DeviceStore;
  }

  async function person(prefix: string, devices = 1): Promise<Device[]> {
    const name = `${prefix}${++names}`;
    const first = await signUp(cluster.url(A), name);
    const out: Device[] = [{ ...first, store: new DeviceStore(`${name} device 0`) }];
    for (let i = 1; i < devices; i++) out.push({ ...(await logIn(cluster.url(B), name, 'correct horse', `device-${i}`)), store: new DeviceStore(`${name} device ${i}`) });
    return out;
  }

  /** A client's connection: its live messages go through gap fill into the device's store. */
  const connect = (device: Device, url: string): Promise<Connected> => connectAuthenticated(url, device.token, GapFillingSocket.open(device.store));
  const send = (socket: TestSocket, threadId: number, text: string): Promise<Frame> =>
    socket.expect({ type: 'send', thread_id: threadId, client_msg_id: `c-${text}`, body: { text } }, 'ack');
  /** The next `count` message events, as seqs. */
  const nextSeqs = async (socket: TestSocket, count: number): Promise<number[]> => {
    const seqs: number[] = [];
    for (let i = 0; i < count; i++) seqs.push((await socket.nextEvent('message')).message.seq);
    return seqs;
  };
  const history = async (socket: TestSocket, threadId: number): Promise<Array<[number, number]>> =>
    (await socket.expect({ type: 'history', thread_id: threadId, after: 0, limit: 200 }, 'messages')).messages.map((m: Frame) => [m.seq, m.id]);
  const held = (device: Device, threadId: number): Array<[number, number]> => device.store.messages(threadId).map((m: Frame) => [m.seq, m.id]);

  /** Resolves at node `node`'s next log line `msg` about `device` (one logged before the call does not count). */
  const nextLog = (node: number, msg: string, device: number): Promise<unknown> => {
    const server = cluster.node(node);
    const matches = (line: Record<string, unknown>): boolean => line.msg === msg && line.device === device;
    const before = server.logs.filter(matches).length;
    return server.waitForLog((line) => matches(line) && server.logs.filter(matches).length > before);
  };
  const isLive = async (device: Device): Promise<boolean> =>
    (await cluster.sql<{ live: boolean }>('SELECT live_after IS NOT NULL AS live FROM devices WHERE id = $1', [device.deviceId]))[0]?.live === true;

  /**
   * Both nodes listen to the thread. A node subscribes a thread's channel when
   * a connection of it starts following the thread, without waiting for Redis
   * to confirm: what is published before that is lost there (by design; the
   * client fills it in at the next message). The cases that need a message to
   * arrive live wait for this first, so that only the losses they make happen.
   */
  const listening = (threadId: number): Promise<void> => cluster.subscribed(`t:${threadId}`, 2);

  /** Node B loses Redis: its connections are reset and new ones refused, so nothing published meanwhile reaches it. */
  const cutBus = (): void => {
    busProxy.refuse(true);
    busProxy.cut();
  };

  /**
   * Node B has Redis again once a publication from node A reaches its
   * clients: typing from `from` (on A) until `to` (on B) sees one. Each probe
   * waits for its `ok` and a little for the event; the loop ends on the event,
   * not on the time.
   */
  async function healBus(from: TestSocket, to: TestSocket, threadId: number): Promise<void> {
    const acceptedBefore = busProxy.accepted;
    busProxy.refuse(false);
    const seen = to.nextEvent('typing').then(() => true);
    const deadline = Date.now() + 20_000;
    for (;;) {
      await from.expect({ type: 'typing', thread_id: threadId }, 'ok');
      const arrived = await Promise.race([seen, new Promise<false>((resolve) => setTimeout(() => resolve(false), 100))]);
      if (arrived) break;
      if (Date.now() > deadline) assert.fail('node B did not get its Redis connection back within 20 s');
    }
    assert.ok(busProxy.accepted > acceptedBefore, 'node B reconnected to Redis through the proxy');
    from.drain('typing');
    to.drain('typing');
  }

  it('receivers on node B miss what node A publishes while B has no Redis, and fill it from the next message’s seq gap', { timeout: 30_000 }, async () => {
    const [alice] = (await person('alice')) as [Device];
    const bob = await person('bob', 2);
    const [carol] = (await person('carol')) as [Device];
    const a = await connect(alice, cluster.wsUrl(A));
    const c = await connect(carol, cluster.wsUrl(A));
    const bs = await Promise.all(bob.map((device) => connect(device, cluster.wsUrl(B))));
    const group = (await a.socket.expect({ type: 'group_create', title: 'Lossy', members: [(bob[0] as Device).userId, carol.userId] }, 'thread')).thread.id;
    await listening(group);
    await send(a.socket, group, 'before the cut');
    // group_created (seq 1) and the first message, live or filled in: everyone holds 1..2.
    for (const receiver of [c, ...bs]) assert.deepEqual(await nextSeqs(receiver.socket, 2), [1, 2]);
    const filledBefore = bs.map((receiver) => (receiver.socket as GapFillingSocket).filled);

    cutBus();
    for (const text of ['lost 1', 'lost 2', 'lost 3']) await send(a.socket, group, text);
    assert.deepEqual(await nextSeqs(c.socket, 3), [3, 4, 5], 'carol, on node A, got them live');
    await healBus(a.socket, bs[0]?.socket as TestSocket, group);
    for (const [i, receiver] of bs.entries()) {
      assert.deepEqual(receiver.socket.drain('message'), [], `bob's device ${i} on node B got nothing of what was sent while B had no Redis`);
    }

    await send(a.socket, group, 'after the heal');
    for (const [i, receiver] of bs.entries()) {
      assert.deepEqual(await nextSeqs(receiver.socket, 4), [3, 4, 5, 6], `bob's device ${i}: the gap filled, then the new message, in seq order`);
      const device = bob[i] as Device;
      assert.deepEqual(
        [3, 4, 5].map((seq) => device.store.source(group, seq)),
        ['fill', 'fill', 'fill'],
        `bob's device ${i}: 3..5 by history (they were lost on the bus)`,
      );
      // Only a live message past a gap starts a fill: 6 came live (its history page may have brought it first).
      assert.equal((receiver.socket as GapFillingSocket).filled, (filledBefore[i] as number) + 1, 'one gap, filled once');
      assert.deepEqual(held(device, group), await history(receiver.socket, group), `bob's device ${i} holds every message once`);
      await receiver.socket.expect({ type: 'delivered', thread_id: group, seq: 6 }, 'delivered');
    }
    for (const connection of [a, c, ...bs]) connection.socket.close();
  });

  it('with no next message, the receiver’s next connection brings what the bus lost (its inbox, on the other node)', { timeout: 30_000 }, async () => {
    const [alice] = (await person('alice')) as [Device];
    const [bob] = (await person('bob')) as [Device];
    const a = await connect(alice, cluster.wsUrl(A));
    const b = await connect(bob, cluster.wsUrl(B));
    const thread = (await a.socket.expect({ type: 'direct_open', user_id: bob.userId }, 'thread')).thread.id;
    await listening(thread);
    await send(a.socket, thread, 'first');
    assert.deepEqual(await nextSeqs(b.socket, 1), [1]);
    await b.socket.expect({ type: 'delivered', thread_id: thread, seq: 1 }, 'delivered');

    cutBus();
    for (const text of ['lost 1', 'lost 2', 'lost 3']) await send(a.socket, thread, text);
    // An ack leaves before its message is published (store, ack, then fan out): node B misses the messages
    // only if the bus carries them before B is back. Alice's connection, on node A, gets them back from
    // Redis as every follower does: once it has them, so has the bus, while B was still cut.
    assert.deepEqual(await nextSeqs(a.socket, 4), [1, 2, 3, 4], 'alice, on node A, got her messages back from the bus');
    await healBus(a.socket, b.socket, thread);
    assert.deepEqual(b.socket.drain('message'), [], 'bob got nothing live while node B had no Redis');

    // The client reconnects (here to node A) as it would after any disconnect: inbox, then sync by its cursors.
    b.socket.close();
    const back = await connect(bob, cluster.wsUrl(A));
    assert.deepEqual(
      back.inbox.map((frame: Frame) => frame.message.seq),
      [2, 3, 4],
      'the inbox on node A has what bob had not acked: the messages the bus lost',
    );
    const synced = await back.socket.expect({ type: 'sync', cursors: [{ thread_id: thread, seq: bob.store.top(thread) }] }, 'sync');
    assert.deepEqual(synced.threads, [], 'sync by the cursors the client holds finds nothing missing');
    assert.deepEqual(held(bob, thread), await history(back.socket, thread), 'bob holds every message once');
    for (const socket of [a.socket, back.socket]) socket.close();
  });

  it('a device moved to another node by a reconnect gets its inbox there: after a clean close, and while the node it left still holds its connection', { timeout: 30_000 }, async () => {
    const [alice] = (await person('alice')) as [Device];
    const [bob] = (await person('bob')) as [Device];
    const a = await connect(alice, cluster.wsUrl(A));
    const thread = (await a.socket.expect({ type: 'direct_open', user_id: bob.userId }, 'thread')).thread.id;

    // A clean move: acked 1 on node B, away, back on node A.
    const b1 = await connect(bob, cluster.wsUrl(B));
    await listening(thread);
    await send(a.socket, thread, 'one');
    assert.deepEqual(await nextSeqs(b1.socket, 1), [1]);
    await b1.socket.expect({ type: 'delivered', thread_id: thread, seq: 1 }, 'delivered');
    const leftB = nextLog(B, 'connection closed', bob.deviceId);
    b1.socket.close();
    await leftB;
    for (const text of ['two', 'three']) await send(a.socket, thread, text);
    const onA = await connect(bob, cluster.wsUrl(A));
    assert.deepEqual(
      onA.inbox.map((frame: Frame) => frame.message.seq),
      [2, 3],
      'node A sends the inbox written while bob was away from node B',
    );
    await onA.socket.expect({ type: 'delivered', thread_id: thread, seq: 3 }, 'delivered');
    const leftA = nextLog(A, 'connection closed', bob.deviceId);
    onA.socket.close();
    await leftA;

    // A move away from a connection that node B still holds (a dead NAT: nothing gets through, nobody is told).
    const link = await TcpProxy.start(cluster.node(B).port);
    const viaProxy = await connect(bob, `ws://127.0.0.1:${link.port}/v1/ws`);
    viaProxy.socket.ws.on('error', () => {});
    await listening(thread);
    await send(a.socket, thread, 'four');
    assert.deepEqual(await nextSeqs(viaProxy.socket, 1), [4]);
    await viaProxy.socket.expect({ type: 'delivered', thread_id: thread, seq: 4 }, 'delivered');
    link.stall('both');
    for (const text of ['five', 'six']) await send(a.socket, thread, text);
    // Node B wrote them into the stalled connection: bob's device is live there, so no inbox rows were written at send.
    const moved = await connect(bob, cluster.wsUrl(A));
    assert.deepEqual(
      moved.inbox.map((frame: Frame) => frame.message.seq),
      [5, 6],
      'node A hands the device over from node B: what it had not acked comes in the inbox',
    );
    assert.deepEqual((await moved.socket.expect({ type: 'sync', cursors: [{ thread_id: thread, seq: bob.store.top(thread) }] }, 'sync')).threads, []);
    await moved.socket.expect({ type: 'delivered', thread_id: thread, seq: 6 }, 'delivered');

    // Node B finally learns its connection is gone: that must not undo the move.
    const staleClosed = nextLog(B, 'connection closed', bob.deviceId);
    link.cut();
    await staleClosed;
    assert.equal(await isLive(bob), true, 'the database still marks bob live (on node A): no inbox rows, no push, for a device that is connected');
    await send(a.socket, thread, 'seven');
    assert.deepEqual(await nextSeqs(moved.socket, 1), [7], 'bob, now on node A, gets the next message live');
    assert.equal(await isLive(bob), true);
    assert.deepEqual(held(bob, thread), await history(moved.socket, thread), 'bob holds every message once');
    for (const socket of [a.socket, moved.socket]) socket.close();
    await link.close();
  });
});

/**
 * A partition longer than the dead threshold: node B has no Redis for more
 * than three heartbeats, so node A takes it for dead and hands its devices
 * over (their unacked messages to their inboxes, their live marks cleared);
 * when B is back it learns it was forgotten and closes its connections (its
 * presence and liveness are gone); their clients reconnect and catch up.
 */
describe(`cluster: a node cut from Redis past the dead threshold (${preferredTransport})`, () => {
  let cluster: Cluster;
  let busProxy: TcpProxy;

  before(async () => {
    cluster = await startCluster({
      nodes: 2,
      transport: preferredTransport,
      // Dead after 1.5 s: soon enough for the test, and a node that misses a beat on a busy shared machine is not taken for dead.
      heartbeatMs: 500,
      busUrl: async (node, redis) => {
        if (node !== B) return redis.url;
        busProxy = await TcpProxy.start(redis.port);
        return `redis://127.0.0.1:${busProxy.port}`;
      },
      config: `
[accounts]
registration = "open"
`,
    });
  });
  after(async () => {
    await cluster.stop();
    await busProxy?.close();
  });

  it('is taken for dead and handed over; back, it closes its connections, and its clients lose nothing', { timeout: 30_000 }, async () => {
    const alice = await signUp(cluster.url(A), 'alice');
    const bob = await signUp(cluster.url(B), 'bob');
    const bobStore = new DeviceStore('bob');
    const a = await connectAuthenticated(cluster.wsUrl(A), alice.token);
    const b = await connectAuthenticated(cluster.wsUrl(B), bob.token, GapFillingSocket.open(bobStore));
    b.socket.ws.on('error', () => {});
    const thread = (await a.socket.expect({ type: 'direct_open', user_id: bob.userId }, 'thread')).thread.id;
    await cluster.subscribed(`t:${thread}`, 2);
    await a.socket.expect({ type: 'send', thread_id: thread, client_msg_id: 'one', body: { text: 'one' } }, 'ack');
    assert.equal((await b.socket.nextEvent('message')).message.seq, 1);
    await b.socket.expect({ type: 'delivered', thread_id: thread, seq: 1 }, 'delivered');
    const live = async (): Promise<boolean> =>
      (await cluster.sql<{ live: boolean }>('SELECT live_after IS NOT NULL AS live FROM devices WHERE id = $1', [bob.deviceId]))[0]?.live === true;
    assert.equal(await live(), true);

    busProxy.refuse(true);
    busProxy.cut();
    // Node A's sweep releases bob's device: nothing tells a client, so look at the database until it shows (with a deadline).
    const deadline = Date.now() + 10_000;
    while (await live()) {
      assert.ok(Date.now() < deadline, "node A did not take node B for dead and hand bob's device over within 10 s");
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    for (const text of ['two', 'three']) await a.socket.expect({ type: 'send', thread_id: thread, client_msg_id: text, body: { text } }, 'ack');

    busProxy.refuse(false);
    const closed = await b.socket.closed;
    const reconnecting: number[] = Object.values(CloseCodes).filter((close) => close.reconnect).map((close) => close.code);
    assert.ok(reconnecting.includes(closed.code), `node B, forgotten, closes its connections with a code that says to reconnect (got ${closed.code})`);
    assert.deepEqual(b.socket.drain('message'), [], 'nothing came live while node B had no Redis');

    const back = await connectAuthenticated(cluster.wsUrl(B), bob.token, GapFillingSocket.open(bobStore));
    assert.deepEqual(
      back.inbox.map((frame: Frame) => frame.message.seq),
      [2, 3],
      'the inbox has what was sent while bob was cut off',
    );
    assert.deepEqual((await back.socket.expect({ type: 'sync', cursors: [{ thread_id: thread, seq: bobStore.top(thread) }] }, 'sync')).threads, []);
    await cluster.subscribed(`t:${thread}`, 2);
    await a.socket.expect({ type: 'send', thread_id: thread, client_msg_id: 'four', body: { text: 'four' } }, 'ack');
    assert.equal((await back.socket.nextEvent('message')).message.seq, 4, 'node B delivers live again');
    assert.equal(await live(), true, 'and marks bob live again');
    const stored = (await back.socket.expect({ type: 'history', thread_id: thread }, 'messages')).messages.map((m: Frame) => [m.seq, m.id]);
    assert.deepEqual(
      bobStore.messages(thread).map((m: Frame) => [m.seq, m.id]),
      stored,
      'bob holds every message once',
    );
    a.socket.close();
    back.socket.close();
  });
});
