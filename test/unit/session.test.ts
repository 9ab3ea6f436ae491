import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChatError, CloseCodes } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { ChannelRegistry, type LiveLink } from '../../src/realtime/channels.js';
import { MemoryBroker } from '../../src/realtime/memory-broker.js';
import { MemoryDeviceLinks } from '../../src/realtime/memory-device-links.js';
import { MemoryPresenceStore } from '../../src/realtime/memory-presence-store.js';
import { nodeEvents } from '../../src/realtime/node-events.js';
import { SessionRegistry } from '../../src/realtime/sessions.js';
import { MemoryAuditLog } from '../../src/services/audit.js';
import { DeliveryService } from '../../src/services/delivery.js';
import { ConnectionLimits } from '../../src/services/limits/connection-limits.js';
import { MemoryRateLimitStore } from '../../src/services/limits/memory-rate-limit-store.js';
import { MessagingService } from '../../src/services/messaging.js';
import { PresenceService } from '../../src/services/presence.js';
import type { Fanout, Principal } from '../../src/services/types.js';
import { WireFanout } from '../../src/session/fanout.js';
import type { chatHandlers } from '../../src/session/handlers.js';
import { Session } from '../../src/session/session.js';
import type { DeliveryStorage } from '../../src/storage/ports/delivery.js';
import { SqliteDeliveryStorage } from '../../src/storage/sqlite/delivery.js';
import { SqliteMessagingStorage } from '../../src/storage/sqlite/messaging.js';
import { SqlitePresenceStorage } from '../../src/storage/sqlite/presence.js';
import { groupOfTwo } from '../helpers/group-of-two.js';
import { FakeConnection } from '../helpers/fake-connection.js';

const MAX_BUFFERED = 1_000;

/** Lets the event loop run (the group commit, the awaited reads) until `done` holds; fails rather than hangs. */
async function until(done: () => boolean, what: string): Promise<void> {
  for (let turn = 0; turn < 500; turn++) {
    if (done()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.fail(`never happened: ${what}`);
}

/** A node in process: the session's real collaborators over SQLite :memory:, a FakeClock, and fake connections. */
function node(options: { deliveryStorage?: (inner: SqliteDeliveryStorage) => DeliveryStorage } = {}) {
  const { db, store, clock, alice, bob, alicePhone, bobPhone, thread } = groupOfTwo();
  const principals = new Map<string, Principal>([
    ['alice-token', { user: { id: alice, username: 'alice', displayName: 'Alice' }, deviceId: alicePhone }],
    ['bob-token', { user: { id: bob, username: 'bob', displayName: 'Bob' }, deviceId: bobPhone }],
  ]);
  /** Held back by the test when it wants frames to arrive while a token is checked. */
  let authGate: Promise<void> = Promise.resolve();
  const accounts = {
    authenticate: async (token: string): Promise<Principal> => {
      await authGate;
      // What better-sqlite3 throws when a read fails (SQLITE_IOERR), or a network error on another engine.
      if (token === 'storage-failing') throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' });
      const principal = principals.get(token);
      if (!principal) throw new ChatError('unauthorized', 'this token is not valid');
      return principal;
    },
    deviceConnected: (): void => {},
  };
  const broker = new MemoryBroker();
  const links = new MemoryDeviceLinks<LiveLink>();
  const published: Array<[string, string]> = [];
  /** What happened on the message path, in order: frames sent to any connection, publications, push wake-ups. */
  const order: string[] = [];
  const channels = new ChannelRegistry(broker, links, (topic, text) => {
    published.push([topic, text]);
    order.push(`publish ${topic}`);
  });
  const revokedDevices = new Set<number>();
  const registry = new SessionRegistry(async (deviceId) => !revokedDevices.has(deviceId), links);
  const deliveryStorage = new SqliteDeliveryStorage(store);
  const delivery = new DeliveryService({
    storage: options.deliveryStorage?.(deliveryStorage) ?? deliveryStorage,
    links,
    broker,
    clock,
    pushes: { pushQueued: () => {} },
    settings: { maxMessages: 1_000, readDiffusionAbove: 100, push: { apns: false, fcm: false }, inboxMaxAgeMs: 86_400_000 },
  });
  broker.run(nodeEvents({ channels, revocations: registry, delivery }));
  const presence = new PresenceService({ storage: new SqlitePresenceStorage(store), clock, fanout: { presence: () => {} } as unknown as Fanout, connections: new MemoryPresenceStore(), offlineGraceMs: 1_000, node: 'test' });
  const settings = { maxMessages: 1_000, readDiffusionAbove: 100, push: { apns: true, fcm: false } };
  const messaging = new MessagingService({
    storage: new SqliteMessagingStorage(store, settings),
    clock,
    fanout: new WireFanout(broker),
    pushes: { pushQueued: () => order.push('push wake') },
    sendBudget: { spend: () => {} },
    attachments: { attachable: async () => new Map() },
    settings: { ...settings, maxBodyBytes: 16_000, requireE2e: false, attachmentsEnabled: true },
  });
  const limitStore = new MemoryRateLimitStore(clock);
  const limits = new ConnectionLimits({
    shared: limitStore,
    local: new MemoryRateLimitStore(clock),
    settings: {
      pauseAfterFloodMs: 1_000,
      connectionsPerAddressPerMinute: 1_000,
      authPerAddressPerMinute: 1_000,
      authPerUserPerMinute: 1_000,
      authPerDevicePerMinute: 1_000,
      maxUnauthenticated: 1_000,
      maxUnauthenticatedPerAddress: 1_000,
      maxConnectionsPerUser: 10,
      maxConnectionsPerDevice: 10,
    },
  });
  let keys = 0;
  const connect = (): { connection: FakeConnection; session: Session } => {
    const connection = new FakeConnection();
    const session = new Session(connection, {
      accounts,
      limits,
      services: { presence, messaging },
      // The session answers auth and ping itself; these tests send nothing else.
      handlers: {} as ReturnType<typeof chatHandlers>,
      registry,
      channels,
      links,
      delivery,
      linkKey: () => `test:${++keys}`,
      clock,
      log: createLogger('silent'),
      audit: new MemoryAuditLog(),
      epoch: 'epoch',
      settings: {
        authTimeoutMs: 10_000,
        heartbeatIntervalMs: 25_000,
        heartbeatTimeoutMs: 60_000,
        maxFrameBytes: 64_000,
        maxBodyBytes: 16_000,
        framesPerSecond: 100,
        maxRefusedFrames: 10,
        maxBufferedBytes: MAX_BUFFERED,
        historyPageMax: 100,
        maxGroupMembers: 100,
        userSendsPerSecond: 100,
        maxConnectionsPerDevice: 10,
        trustProxy: false,
      },
    });
    connection.attach(session);
    connection.onSend = (text) => order.push(`sent ${(JSON.parse(text) as { type: string }).type}`);
    return { connection, session };
  };
  /** Stores a message from alice as the message path does; its inbox rows go to devices not live. */
  const send = (text: string): Promise<number> =>
    store.batcher.submit(() => {
      const seq = (store.threads.findById(thread)?.last_seq ?? 0) + 1;
      const id = store.messages.insert({ threadId: thread, seq, senderUserId: alice, senderDeviceId: alicePhone, clientMsgId: `m${seq}`, kind: 'text', body: JSON.stringify({ text }), now: clock.now() }) as number;
      store.threads.setLastSeq(thread, seq, clock.now());
      store.inbox.add({ id, thread_id: thread, seq, sender_device_id: alicePhone, created_at: clock.now() }, 1_000);
      return id;
    });
  const holdAuth = (): (() => void) => {
    let release!: () => void;
    authGate = new Promise((resolve) => (release = resolve));
    return release;
  };
  return { db, store, clock, thread, order, bob, bobPhone, links, broker, registry, published, revokedDevices, limitStore, connect, send, holdAuth };
}

const auth = (token: string): string => JSON.stringify({ type: 'auth', id: 'a1', token });

describe('Session in process', () => {
  it('answers frames that came while the token was checked after the welcome, in order, not "authenticate first"', async () => {
    const n = node();
    const release = n.holdAuth();
    const { connection } = n.connect();
    connection.receive(auth('bob-token'));
    connection.receive(JSON.stringify({ type: 'ping', id: 'p1' }));
    connection.receive(JSON.stringify({ type: 'ping', id: 'p2' }));
    assert.deepEqual(connection.sent, [], 'nothing answered while the token is checked');
    release();
    await until(() => connection.types().includes('inbox_done'), 'inbox_done');
    assert.deepEqual(connection.types(), ['welcome', 'pong', 'pong', 'inbox_done']);
    assert.deepEqual(connection.frames().slice(1, 3).map((f) => f.id), ['p1', 'p2']);
    n.db.close();
  });

  it('refuses a bad token and closes with auth_failed; a frame before auth is told to authenticate first', async () => {
    const n = node();
    const { connection } = n.connect();
    connection.receive(JSON.stringify({ type: 'ping', id: 'early' }));
    assert.equal(connection.frames()[0]?.type, 'error');
    connection.receive(auth('nobody'));
    await until(() => connection.closedWith !== undefined, 'the close');
    assert.equal(connection.closedWith?.code, CloseCodes.auth_failed.code);
    assert.equal(n.links.ofUser(n.bob).length, 0, 'never linked');
    n.db.close();
  });

  it('sends the inbox, then inbox_done, then follows live: the device is marked live and later messages come by the broker', async () => {
    const n = node();
    for (const text of ['one', 'two', 'three']) await n.send(text);
    const { connection } = n.connect();
    connection.receive(auth('bob-token'));
    await until(() => connection.types().includes('inbox_done'), 'inbox_done');
    assert.deepEqual(connection.types(), ['welcome', 'message', 'message', 'message', 'inbox_done']);
    assert.deepEqual(connection.frames().at(-1), { type: 'inbox_done', count: 3, overflow: false });
    assert.deepEqual([...connection.topics], [`t:${n.thread}`], 'its thread is a transport topic; its user and device channels come through its link');
    assert.equal(n.broker.subscribed(`d:${n.bobPhone}`), true, "the node follows the device's channel");
    assert.equal(n.broker.subscribed(`u:${n.bob}`), true, "the node follows the user's channel");
    await until(() => n.store.inbox.liveDevices().includes(n.bobPhone), 'the live mark');
    n.broker.publish(`t:${n.thread}`, 'live');
    assert.deepEqual(n.published, [[`t:${n.thread}`, 'live']], "to the transport's topic, in the same turn");
    n.broker.publish(`u:${n.bob}`, '{"type":"hidden","items":[]}');
    assert.equal(connection.types().at(-1), 'hidden', "the user's event, in the same turn");
    assert.equal(n.published.length, 1, 'not through a transport topic');
    n.db.close();
  });

  it('paces a large inbox under a full send buffer: it waits, retries on the clock, and is never cut', async () => {
    const n = node();
    for (let i = 0; i < 6; i++) await n.send(`m${i}`);
    const { connection } = n.connect();
    // Each frame leaves 200 bytes unread: past half the limit (500) after three.
    connection.bytesPerSend = 200;
    connection.receive(auth('bob-token'));
    await until(() => connection.types().filter((t) => t === 'message').length === 2, 'the first messages');
    // The welcome counted too: 3 frames, 600 bytes.
    await until(() => n.clock.pending > 0, 'a retry scheduled');
    assert.deepEqual(connection.types(), ['welcome', 'message', 'message']);
    n.clock.advance(20);
    await Promise.resolve();
    assert.deepEqual(connection.types().length, 3, 'still full: it waits again');
    connection.buffered = 0;
    n.clock.advance(20);
    await until(() => connection.types().filter((t) => t === 'message').length === 5, 'three more after the retry, until full again');
    connection.drained();
    await until(() => connection.types().includes('inbox_done'), 'inbox_done');
    assert.equal(connection.types().filter((t) => t === 'message').length, 6);
    assert.equal(connection.closedWith, undefined, 'a slow link is paced, not cut');
    n.db.close();
  });

  it('cuts a slow consumer whose unread frames pass the limit', async () => {
    const n = node();
    const { connection } = n.connect();
    connection.receive(auth('bob-token'));
    await until(() => connection.types().includes('inbox_done'), 'inbox_done');
    connection.buffered = MAX_BUFFERED + 1;
    n.registry.sweep(n.clock.now());
    assert.equal(connection.closedWith?.code, CloseCodes.slow_consumer.code);
    n.db.close();
  });

  it("closing ends the device's liveness: what it got live and did not acknowledge goes to its inbox", async () => {
    const n = node();
    const { connection } = n.connect();
    connection.receive(auth('bob-token'));
    await until(() => n.store.inbox.liveDevices().includes(n.bobPhone), 'the live mark');
    const id = await n.send('while live');
    assert.deepEqual(n.store.inbox.pending(n.bobPhone, 0, 10), [], 'live: no inbox row');
    connection.close(1000, 'bye');
    assert.deepEqual(n.links.ofDevice(n.bobPhone), []);
    assert.equal(n.broker.subscribed(`u:${n.bob}`), false, 'the node follows nothing for it any more');
    await until(() => n.store.inbox.pending(n.bobPhone, 0, 10).length === 1, 'the handover');
    assert.equal(n.store.inbox.pending(n.bobPhone, 0, 10)[0]?.id, id);
    assert.deepEqual(n.store.inbox.liveDevices(), []);
    n.db.close();
  });

  it("a new connection of the device takes the liveness: its inbox has what the old one got live, and the old one's close hands nothing over twice", async () => {
    const n = node();
    const first = n.connect();
    first.connection.receive(auth('bob-token'));
    await until(() => n.store.inbox.liveDevices().includes(n.bobPhone), 'the live mark');
    const id = await n.send('to the old connection');
    const second = n.connect();
    second.connection.receive(auth('bob-token'));
    await until(() => second.connection.types().includes('inbox_done'), 'inbox_done');
    assert.deepEqual(second.connection.types(), ['welcome', 'message', 'inbox_done']);
    assert.equal((second.connection.frames()[1]?.message as { id: number }).id, id);
    await until(() => n.store.inbox.liveDevices().includes(n.bobPhone), 'live again');
    first.connection.close(1000, 'bye');
    await n.store.batcher.submit(() => undefined);
    assert.deepEqual(n.store.inbox.liveDevices(), [n.bobPhone], 'still live on the new connection');
    n.db.close();
  });

  it("acts on the broker's control events: members changed move the connection's topics, a revocation closes it", async () => {
    const n = node();
    const { connection } = n.connect();
    connection.receive(auth('bob-token'));
    await until(() => connection.types().includes('inbox_done'), 'inbox_done');
    n.broker.publishControl({ kind: 'members_changed', threadId: 77, joined: [n.bob], left: [] });
    assert.equal(connection.topics.has('t:77'), true);
    assert.equal(n.broker.subscribed('t:77'), true);
    n.broker.publishControl({ kind: 'members_changed', threadId: 77, joined: [], left: [n.bob] });
    assert.equal(connection.topics.has('t:77'), false);
    assert.equal(n.broker.subscribed('t:77'), false, 'no connection here follows it any more');
    n.broker.publishControl({ kind: 'revoked', revocations: [{ id: 1, userId: n.bob, deviceId: null, reason: 'user_disabled' }] });
    await new Promise((settled) => setImmediate(settled));
    assert.equal(connection.closedWith, undefined, 'the token still works: nothing closes');
    n.revokedDevices.add(n.bobPhone);
    n.broker.publishControl({ kind: 'revoked', revocations: [{ id: 2, userId: n.bob, deviceId: n.bobPhone, reason: 'device_revoked' }] });
    await new Promise((settled) => setImmediate(settled));
    assert.equal((connection.closedWith as { code: number } | undefined)?.code, CloseCodes.device_revoked.code);
    n.db.close();
  });

  it('a membership change between the last inbox page\'s snapshot and the join is applied at the join: removed, it does not follow; added, it does', async () => {
    // A networked store: the last page is read (one snapshot) when asked; its answer comes back when the test releases it.
    let release: (() => void) | undefined;
    const n = node({
      deliveryStorage: (inner) => {
        const held = Object.create(inner) as SqliteDeliveryStorage;
        held.inboxPage = async (deviceId, afterId, limit) => {
          const page = await inner.inboxPage(deviceId, afterId, limit);
          return new Promise((resolve) => (release = () => resolve(page)));
        };
        return held;
      },
    });
    const { connection } = n.connect();
    connection.receive(auth('bob-token'));
    await until(() => release !== undefined, 'the last inbox page read');
    // Bob is removed from the thread and added to thread 77 meanwhile: committed, then told to every node.
    n.store.transaction(() => n.store.threads.leave(n.thread, n.bob, 1));
    n.broker.publishControl({ kind: 'members_changed', threadId: n.thread, joined: [], left: [n.bob] });
    n.broker.publishControl({ kind: 'members_changed', threadId: 77, joined: [n.bob], left: [] });
    release?.();
    await until(() => connection.types().includes('inbox_done'), 'inbox_done');
    assert.equal(connection.topics.has(`t:${n.thread}`), false, 'the removed member does not follow the thread');
    assert.equal(n.broker.subscribed(`t:${n.thread}`), false);
    assert.equal(connection.topics.has('t:77'), true, 'the added member follows the thread');
    assert.equal(n.broker.subscribed('t:77'), true);
    n.db.close();
  });

  it("gives a device's events (its broker channel) to its connections once their inbox is through, not before", async () => {
    const n = node();
    const { connection } = n.connect();
    // A full buffer holds the inbox back: the connection stays between welcome and inbox_done.
    connection.buffered = 600;
    connection.receive(auth('bob-token'));
    await until(() => n.clock.pending > 0, 'the drain waiting');
    n.broker.publish(`d:${n.bobPhone}`, '{"type":"device_message","early":true}');
    connection.buffered = 0;
    n.clock.advance(20);
    await until(() => connection.types().includes('inbox_done'), 'inbox_done');
    n.broker.publish(`d:${n.bobPhone}`, '{"type":"device_message"}');
    assert.deepEqual(connection.types(), ['welcome', 'inbox_done', 'device_message']);
    assert.equal(connection.frames()[2]?.early, undefined, 'the client fetches what came before inbox_done itself');
    n.db.close();
  });

  it('a connection that closes while its token is checked takes no place among its device’s and user’s connections', async () => {
    const n = node();
    const release = n.holdAuth();
    const { connection } = n.connect();
    connection.receive(auth('bob-token'));
    connection.close(1000, 'gone');
    release();
    await until(() => n.limitStore.size.counts === 0 && n.links.ofDevice(n.bobPhone).length === 0, 'nothing held');
    for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(n.limitStore.size.counts, 0, 'no live place taken after the close');
    assert.deepEqual(n.links.ofDevice(n.bobPhone), []);
    assert.deepEqual(connection.sent, [], 'no welcome to a closed connection');
    n.db.close();
  });
  it('a send is stored, then acked, then fanned out to the thread, then the push worker is woken: in that order, in one gathered turn', async () => {
    const n = node();
    const { connection } = n.connect();
    connection.receive(auth('alice-token'));
    await until(() => connection.types().includes('inbox_done'), 'inbox_done');
    n.order.length = 0;
    const gathers = connection.gathered.length;
    connection.receive(JSON.stringify({ type: 'send', id: 's1', thread_id: n.thread, client_msg_id: 'c1', kind: 'text', body: { text: 'hi' } }));
    assert.deepEqual(n.order, [], 'nothing before the commit');
    await until(() => n.order.includes('push wake'), 'the push wake-up');
    assert.deepEqual(n.order, ['sent ack', `publish t:${n.thread}`, 'push wake']);
    assert.equal(connection.gathered.length, gathers + 1, 'one gathered turn');
    assert.equal((JSON.parse(connection.gathered.at(-1)?.[0] ?? '{}') as { type: string }).type, 'ack');
    // The same send again: acked as a duplicate, announced to nobody.
    n.order.length = 0;
    connection.receive(JSON.stringify({ type: 'send', id: 's2', thread_id: n.thread, client_msg_id: 'c1', kind: 'text', body: { text: 'hi' } }));
    await until(() => n.order.length > 0, 'the second ack');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(n.order, ['sent ack']);
    assert.equal(connection.frames().at(-1)?.duplicate, true);
    n.db.close();
  });
  it('a storage failure while the token is checked ends that connection (1011, internal), never the process', async () => {
    const n = node();
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown): void => {
      rejections.push(reason);
    };
    process.on('unhandledRejection', onRejection);
    try {
      const { connection } = n.connect();
      connection.receive(auth('storage-failing'));
      await until(() => connection.closedWith !== undefined, 'the close');
      for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(rejections, [], 'no unhandled rejection: Node would exit on one');
      assert.equal(connection.closedWith?.code, CloseCodes.internal_error.code);
      assert.equal(connection.frames()[0]?.type, 'error');
      assert.equal((connection.frames()[0]?.error as { code?: string } | undefined)?.code, 'internal');
      assert.equal(n.links.ofUser(n.bob).length, 0, 'never linked');
    } finally {
      process.off('unhandledRejection', onRejection);
      n.db.close();
    }
  });
});
