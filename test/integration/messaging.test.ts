import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { nodeForDevice, startCluster } from '../helpers/cluster.js';
import { DeviceStore, GapFillingSocket } from '../helpers/gap-fill.js';
import { logIn, request, signUp } from '../helpers/http.js';
import { type ServerProcess, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { type Transport, preferredTransport, transports } from '../helpers/transports.js';
import { type Connected, TestSocket, connectAuthenticated } from '../helpers/ws.js';

const INBOX_MAX = 20;

const CONFIG = `
[accounts]
registration = "open"
[rate_limit]
login_per_address = 100000
[inbox]
max_messages = ${INBOX_MAX}
[messages]
read_diffusion_above = 5
max_group_members = 8
max_body_bytes = 2048
[presence]
offline_grace_ms = 300
[websocket]
frames_per_second = 200
max_refused_frames = 20
`;

/**
 * Where the suite runs: one node per transport on SQLite (as it always has),
 * or two nodes on PostgreSQL and Redis with every user's devices spread across
 * them (issue 19: the end-to-end suite once against two nodes).
 */
interface Deployment {
  /** The base URL for device `device` of user number `user` to sign up or log in on. */
  httpUrl(user: number, device: number): string;
  /** Remembers which node the device that `token` names belongs to. */
  assign(token: string, user: number, device: number): void;
  /** The base URL for HTTP requests made with `token`. */
  urlOf(token: string): string;
  connect(token: string): Promise<Connected>;
  /**
   * Resolves once every node with a connection following the thread listens
   * to it. On one node at once; on two, a node subscribes a thread's channel
   * when the membership change reaches it over the bus, and what is published
   * before that is lost there: messages come back by gap fill, typing (never
   * stored) does not.
   */
  listening(threadId: number): Promise<void>;
  stop(): Promise<unknown>;
}

async function singleNode(transport: Transport): Promise<Deployment> {
  const dir = tempDir();
  const server = await startServer(['--data', `${dir}/data`, '--transport', transport, '--config', writeConfig(dir, CONFIG)]);
  return {
    httpUrl: () => server.url,
    assign: () => {},
    urlOf: () => server.url,
    connect: (token) => connectAuthenticated(server.wsUrl, token),
    listening: async () => {},
    stop: () => server.stop(),
  };
}

/**
 * Two nodes: device k of user number u connects to node (u + k) % 2, so a
 * user's devices are on both nodes and two users made one after the other
 * (the sender and the receiver of most cases) start on different ones. Each
 * device is a client that fills gaps as docs/protocol.md says (the bus may
 * lose a publication: a new group's first message always is, for a node that
 * was not subscribed to the thread yet), with a store that outlives its
 * connections; see GapFillingSocket.
 */
async function twoNodes(): Promise<Deployment> {
  const cluster = await startCluster({ nodes: 2, config: CONFIG, transport: preferredTransport });
  const nodes = new Map<string, number>();
  const stores = new Map<string, DeviceStore>();
  const nodeOf = (token: string): number => {
    const node = nodes.get(token);
    if (node === undefined) throw new Error('a token the suite did not assign to a node');
    return node;
  };
  return {
    httpUrl: (user, device) => cluster.url(nodeForDevice(2, user, device)),
    assign: (token, user, device) => {
      nodes.set(token, nodeForDevice(2, user, device));
      stores.set(token, new DeviceStore(`user ${user} device ${device}`));
    },
    urlOf: (token) => cluster.url(nodeOf(token)),
    connect: (token) => connectAuthenticated(cluster.wsUrl(nodeOf(token)), token, GapFillingSocket.open(stores.get(token) as DeviceStore)),
    listening: (threadId) => cluster.subscribed(`t:${threadId}`, 2),
    stop: () => cluster.stop(),
  };
}

/**
 * Cases that cannot run on two nodes, with why; skipped on that run only.
 * None so far: every case runs on both nodes (typing waits until both listen
 * to the new thread; see Deployment.listening). The slow-consumer case below
 * stays on one node: it is about one node's write queue, not about nodes.
 */
const SINGLE_NODE_ONLY: Record<string, string> = {};

const deployments: Array<{ title: string; deploy: () => Promise<Deployment>; cluster: boolean }> = [
  ...transports('messaging').map((transport) => ({ title: `messaging on the ${transport} transport`, deploy: () => singleNode(transport), cluster: false })),
  { title: `messaging on two nodes (PostgreSQL, Redis; ${preferredTransport})`, deploy: twoNodes, cluster: true },
];

for (const { title, deploy, cluster } of deployments) {
  describe(title, () => {
    let deployment: Deployment;
    let names = 0;

    before(async () => {
      deployment = await deploy();
    });
    after(() => deployment.stop());

    /** A case; on two nodes, bounded in time (a lost event fails it instead of hanging the file) and skipped where SINGLE_NODE_ONLY says. */
    const test = (name: string, fn: () => Promise<void>): void => {
      if (!cluster) it(name, fn);
      else it(name, { timeout: 30_000, skip: SINGLE_NODE_ONLY[name] ?? false }, fn);
    };

    /** A new user with `devices` logged-in devices. */
    async function person(prefix: string, devices = 1): Promise<{ id: number; name: string; tokens: string[] }> {
      const user = ++names;
      const name = `${prefix}${user}`;
      const first = await signUp(deployment.httpUrl(user, 0), name, 'correct horse', 'device-0');
      deployment.assign(first.token, user, 0);
      const tokens = [first.token];
      for (let i = 1; i < devices; i++) {
        const { token } = await logIn(deployment.httpUrl(user, i), name, 'correct horse', `device-${i}`);
        deployment.assign(token, user, i);
        tokens.push(token);
      }
      return { id: first.userId, name, tokens };
    }

    const connect = (token: string): Promise<Connected> => deployment.connect(token);
    const bodies = (frames: any[]): unknown[] => frames.map((frame) => frame.message.body);

    async function direct(socket: TestSocket, userId: number): Promise<number> {
      return (await socket.expect({ type: 'direct_open', user_id: userId }, 'thread')).thread.id;
    }

    async function send(socket: TestSocket, threadId: number, text: string, clientMsgId = `c-${text}`): Promise<any> {
      return socket.expect({ type: 'send', thread_id: threadId, client_msg_id: clientMsgId, body: { text } }, 'ack');
    }

    test('1-1: both ways, each message to the other user and to the sender’s other devices, in seq order', async () => {
      const alice = await person('alice', 2);
      const bob = await person('bob');
      const [a0, a1, b0] = await Promise.all([connect(alice.tokens[0] as string), connect(alice.tokens[1] as string), connect(bob.tokens[0] as string)]);
      const thread = await direct(a0.socket, bob.id);
      assert.equal(await direct(b0.socket, alice.id), thread, 'one direct thread per pair, whoever opens it');

      const ack1 = await send(a0.socket, thread, 'hi bob');
      assert.deepEqual([ack1.thread_id, ack1.seq, ack1.duplicate], [thread, 1, false]);

      const ack2 = await send(b0.socket, thread, 'hi alice');
      assert.equal(ack2.seq, 2);
      for (const device of [a0, a1, b0]) {
        const first = await device.socket.nextEvent('message');
        const second = await device.socket.nextEvent('message');
        assert.deepEqual([first.message.seq, second.message.seq], [1, 2]);
        assert.deepEqual(bodies([first, second]), [{ text: 'hi bob' }, { text: 'hi alice' }]);
        assert.equal(first.message.sender_id, alice.id);
        assert.equal(first.message.id, ack1.message_id);
      }
      const order = a0.socket.arrivals.filter((f) => f.type === 'ack' || f.type === 'message').map((f) => f.type);
      assert.deepEqual(order.slice(0, 2), ['ack', 'message'], 'the sender is acked before the message is fanned out');
      for (const device of [a0, a1, b0]) device.socket.close();
    });

    test('group: every device of every member gets each message once; resending a client_msg_id stores nothing new', async () => {
      const [owner, m1, m2] = [await person('own', 2), await person('mem', 2), await person('mem')];
      const devices = await Promise.all([...owner.tokens, ...m1.tokens, ...m2.tokens].map(connect));
      const created = await devices[0]!.socket.expect({ type: 'group_create', title: 'Team', members: [m1.id, m2.name] }, 'thread');
      const threadId = created.thread.id;
      assert.equal(created.members.length, 3);
      assert.deepEqual(
        created.members.map((m: any) => m.role),
        ['owner', 'member', 'member'],
      );
      const first = await send(devices[2]!.socket, threadId, 'hello team', 'same-id');
      const again = await send(devices[2]!.socket, threadId, 'hello team', 'same-id');
      assert.deepEqual([again.seq, again.message_id, again.duplicate], [first.seq, first.message_id, true]);
      await send(devices[0]!.socket, threadId, 'welcome');
      for (const device of devices) {
        const system = await device.socket.nextEvent('message');
        assert.equal(system.message.kind, 'system');
        assert.equal(system.message.body.event, 'group_created');
        const texts = [await device.socket.nextEvent('message'), await device.socket.nextEvent('message')];
        assert.deepEqual(bodies(texts), [{ text: 'hello team' }, { text: 'welcome' }], 'the resend was not delivered again');
      }
      const history = await devices[4]!.socket.expect({ type: 'history', thread_id: threadId }, 'messages');
      assert.deepEqual(
        history.messages.map((m: any) => m.seq),
        [1, 2, 3],
      );
      // Protocol 4: m1's delivered receipt goes to the authors of what it passed (the owner's seq 3; seq 2 is
      // m1's own), on whichever node their devices are: not to m1's devices, nor to m2 (who wrote none of it).
      await devices[2]!.socket.expect({ type: 'delivered', thread_id: threadId, seq: 3 }, 'delivered');
      const receipt = { type: 'receipt', thread_id: threadId, user_id: m1.id, kind: 'delivered', seq: 3 };
      for (const index of [0, 1]) assert.deepEqual(await devices[index]!.socket.nextEvent('receipt'), receipt);
      await Promise.all(devices.map((device) => device.socket.expect({ type: 'ping' }, 'pong')));
      for (const index of [2, 3, 4]) assert.deepEqual(devices[index]!.socket.drain('receipt'), [], 'nobody else hears of it');
      for (const device of devices) device.socket.close();
    });

    test('offline inbox: a device that was away gets what it missed in order, then inbox_done, then live traffic', async () => {
      const alice = await person('alice', 2);
      const bob = await person('bob', 2);
      const a = await connect(alice.tokens[0] as string);
      const thread = await direct(a.socket, bob.id);
      for (let i = 1; i <= 5; i++) await send(a.socket, thread, `m${i}`);
      const phone = await connect(bob.tokens[0] as string);
      assert.deepEqual(bodies(phone.inbox), [1, 2, 3, 4, 5].map((i) => ({ text: `m${i}` })));
      assert.equal(phone.overflow, false);
      // On two nodes the phone's node may only now subscribe to the thread: 'live' must not be published before
      // (a publication before it is lost there by design, and with no later message nothing would fill it in).
      await deployment.listening(thread);
      await send(a.socket, thread, 'live');
      // The other way round, a message stored just before the phone connected may come live too, after the inbox
      // that had it: node A publishes a moment after its ack, and the phone's node may listen by then. Delivery is
      // at-least-once, deduped by (thread, seq) as clients do: what comes live before 'live' can only be a repeat.
      const live = await phone.socket.nextEvent((frame) => frame.type === 'message' && frame.message.seq > 5);
      assert.deepEqual(live.message.body, { text: 'live' });
      for (const repeat of phone.socket.drain('message')) assert.ok(repeat.message.seq <= 5, `a repeat of the inbox, not seq ${repeat.message.seq}`);
      // Acknowledged messages leave the inbox; the other device still has all of them.
      assert.deepEqual(await phone.socket.expect({ type: 'delivered', thread_id: thread, seq: 6 }, 'delivered'), {
        type: 'delivered',
        id: 'r1',
        thread_id: thread,
        seq: 6,
      });
      assert.deepEqual((await a.socket.nextEvent('receipt')), { type: 'receipt', thread_id: thread, user_id: bob.id, kind: 'delivered', seq: 6 });
      phone.socket.close();
      await phone.socket.closed;
      const again = await connect(bob.tokens[0] as string);
      assert.equal(again.inbox.length, 0, 'acknowledged: not sent again');
      const laptop = await connect(bob.tokens[1] as string);
      assert.equal(laptop.inbox.length, 6);
      // Never one's own sends: the sending device, back after a disconnect without acking, has none; the sender's other device has them all.
      a.socket.close();
      await a.socket.closed;
      const sender = await connect(alice.tokens[0] as string);
      assert.equal(sender.inbox.length, 0, 'the sending device gets none of its own sends from its inbox');
      const other = await connect(alice.tokens[1] as string);
      assert.deepEqual(bodies(other.inbox), [...[1, 2, 3, 4, 5].map((i) => ({ text: `m${i}` })), { text: 'live' }], "the sender's other device gets them");
      for (const socket of [again.socket, laptop.socket, sender.socket, other.socket]) socket.close();
    });

    test('inbox overflow: past the bound the device is told to sync, and sync by cursors loses nothing', async () => {
      const alice = await person('alice');
      const bob = await person('bob');
      const a = await connect(alice.tokens[0] as string);
      const thread = await direct(a.socket, bob.id);
      const total = INBOX_MAX + 5;
      for (let i = 1; i <= total; i++) await send(a.socket, thread, `n${i}`);
      const b = await connect(bob.tokens[0] as string);
      assert.equal(b.overflow, true);
      const synced = await b.socket.expect({ type: 'sync' }, 'sync');
      const entry = synced.threads.find((t: any) => t.thread_id === thread);
      assert.equal(entry.last_seq, total);
      assert.deepEqual(
        entry.messages.map((m: any) => m.seq),
        Array.from({ length: total }, (_, i) => i + 1),
      );
      // With the device's own cursor, only what it lacks.
      const partial = await b.socket.expect({ type: 'sync', cursors: [{ thread_id: thread, seq: total - 2 }] }, 'sync');
      assert.deepEqual(
        partial.threads[0].messages.map((m: any) => m.seq),
        [total - 1, total],
      );
      b.socket.close();
      await b.socket.closed;
      const back = await connect(bob.tokens[0] as string);
      assert.equal(back.overflow, false, 'the sync cleared the flag');
      for (const socket of [a.socket, back.socket]) socket.close();
    });

    test('history: pages before and after a seq, around a message, and fills a gap', async () => {
      const alice = await person('alice');
      const bob = await person('bob');
      const a = await connect(alice.tokens[0] as string);
      const thread = await direct(a.socket, bob.id);
      const acks = [];
      for (let i = 1; i <= 12; i++) acks.push(await send(a.socket, thread, `h${i}`));
      const seqs = (page: any): number[] => page.messages.map((m: any) => m.seq);
      const latest = await a.socket.expect({ type: 'history', thread_id: thread, limit: 5 }, 'messages');
      assert.deepEqual(seqs(latest), [8, 9, 10, 11, 12]);
      assert.deepEqual([latest.has_more_before, latest.has_more_after], [true, false]);
      const older = await a.socket.expect({ type: 'history', thread_id: thread, before: 8, limit: 5 }, 'messages');
      assert.deepEqual(seqs(older), [3, 4, 5, 6, 7]);
      const gap = await a.socket.expect({ type: 'history', thread_id: thread, after: 5, limit: 1 }, 'messages');
      assert.deepEqual(seqs(gap), [6], 'has 5, got 7: asks for what is after 5');
      const around = await a.socket.expect({ type: 'jump', message_id: acks[5].message_id, limit: 5 }, 'messages');
      assert.deepEqual(seqs(around), [4, 5, 6, 7, 8]);
      assert.deepEqual([around.has_more_before, around.has_more_after], [true, true]);
      const both = await a.socket.request({ type: 'history', thread_id: thread, before: 3, after: 1 });
      assert.equal(both.error.code, 'invalid_field');
      a.socket.close();
    });

    test('read cursors: unread counts per thread and in total, read receipts to the others, sync to my devices', async () => {
      const alice = await person('alice');
      const bob = await person('bob', 2);
      const carol = await person('carol');
      const [a, b0, b1] = await Promise.all([connect(alice.tokens[0] as string), connect(bob.tokens[0] as string), connect(bob.tokens[1] as string)]);
      const c = await connect(carol.tokens[0] as string);
      const withBob = await direct(a.socket, bob.id);
      const withCarol = await direct(c.socket, bob.id);
      for (let i = 1; i <= 3; i++) await send(a.socket, withBob, `r${i}`);
      await send(c.socket, withCarol, 'from carol');
      const list = await b0.socket.expect({ type: 'threads' }, 'threads');
      assert.equal(list.total_unread, 4);
      assert.deepEqual(
        list.threads.map((t: any) => [t.id, t.unread]),
        [
          [withCarol, 1],
          [withBob, 3],
        ],
        'most recent activity first',
      );
      assert.deepEqual(list.threads[0].last_message.body, { text: 'from carol' });
      assert.equal(list.threads[0].peer.id, carol.id);
      const state = await b0.socket.expect({ type: 'read', thread_id: withBob, seq: 2 }, 'read_state');
      assert.deepEqual([state.read_seq, state.unread, state.total_unread], [2, 1, 2]);
      const receipt = { type: 'receipt', thread_id: withBob, user_id: bob.id, kind: 'read', seq: 2 };
      assert.deepEqual(await a.socket.nextEvent('receipt'), receipt);
      assert.deepEqual(await b1.socket.nextEvent((f) => f.type === 'receipt' && f.kind === 'read'), receipt, 'my other device learns it too');
      const backwards = await b0.socket.expect({ type: 'read', thread_id: withBob, seq: 1 }, 'read_state');
      assert.equal(backwards.read_seq, 2, 'a read cursor never moves back');
      // Writing reads: alice's own message leaves her nothing unread.
      assert.equal((await a.socket.expect({ type: 'threads' }, 'threads')).total_unread, 0);
      for (const socket of [a.socket, b0.socket, b1.socket, c.socket]) socket.close();
    });

    test('non-members cannot send to, read, or learn about a thread, even by guessing ids', async () => {
      const alice = await person('alice');
      const bob = await person('bob');
      const eve = await person('eve');
      const [a, e] = await Promise.all([connect(alice.tokens[0] as string), connect(eve.tokens[0] as string)]);
      const thread = await direct(a.socket, bob.id);
      const ack = await send(a.socket, thread, 'secret');
      const attempts = [
        { type: 'send', thread_id: thread, client_msg_id: 'x', body: { text: 'hi' } },
        { type: 'history', thread_id: thread },
        { type: 'thread_get', thread_id: thread },
        { type: 'read', thread_id: thread, seq: 1 },
        { type: 'delivered', thread_id: thread, seq: 1 },
        { type: 'typing', thread_id: thread },
        { type: 'jump', message_id: ack.message_id },
        { type: 'group_add', thread_id: thread, members: [eve.id] },
      ];
      for (const attempt of attempts) {
        const reply = await e.socket.request(attempt);
        assert.equal(reply.error?.code, 'not_found', `${attempt.type}: ${JSON.stringify(reply)}`);
      }
      const missing = await e.socket.request({ type: 'history', thread_id: 999_999 });
      assert.equal(missing.error.message.replace('999999', String(thread)), (await e.socket.request({ type: 'history', thread_id: thread })).error.message, 'the same answer as for a thread that does not exist');
      assert.equal((await e.socket.expect({ type: 'threads' }, 'threads')).threads.length, 0);
      assert.equal(e.socket.drain('message').length, 0);
      a.socket.close();
      e.socket.close();
    });

    test('groups: admins add and remove, members cannot; a removed member gets nothing more and keeps history up to the removal', async () => {
      const [owner, admin, member, newcomer] = [await person('owner'), await person('admin'), await person('member'), await person('new')];
      const [o, ad, m, n] = (await Promise.all([owner, admin, member, newcomer].map((p) => connect(p.tokens[0] as string)))) as [Connected, Connected, Connected, Connected];
      const group = (await o.socket.expect({ type: 'group_create', title: 'Club', members: [admin.id, member.id] }, 'thread')).thread.id;
      await o.socket.expect({ type: 'group_role', thread_id: group, user_id: admin.id, role: 'admin' }, 'thread');
      const denied = await m.socket.request({ type: 'group_add', thread_id: group, members: [newcomer.id] });
      assert.equal(denied.error.code, 'forbidden');
      const added = await ad.socket.expect({ type: 'group_add', thread_id: group, members: [newcomer.id] }, 'thread');
      assert.equal(added.members.length, 4);
      const joined = await n.socket.nextEvent('message');
      assert.deepEqual(joined.message.body, { event: 'members_added', user_ids: [newcomer.id] });
      const newcomerHistory = await n.socket.expect({ type: 'history', thread_id: group }, 'messages');
      assert.deepEqual(
        newcomerHistory.messages.map((msg: any) => msg.body.event),
        ['members_added'],
        'history from the moment they joined',
      );
      await send(o.socket, group, 'before removal');
      const removed = await ad.socket.request({ type: 'group_remove', thread_id: group, user_id: member.id });
      assert.equal(removed.type, 'ok');
      const cannotRemoveOwner = await ad.socket.request({ type: 'group_remove', thread_id: group, user_id: owner.id });
      assert.equal(cannotRemoveOwner.error.code, 'forbidden');
      await send(o.socket, group, 'after removal');
      assert.deepEqual((await n.socket.nextEvent((f) => f.type === 'message' && f.message.body.text === 'after removal')).message.body, { text: 'after removal' });
      const seen = bodies(m.socket.drain('message'));
      assert.ok(seen.some((body: any) => body.event === 'member_removed'), 'the removed member is told');
      assert.ok(!seen.some((body: any) => body.text === 'after removal'), 'and gets nothing after');
      const history = await m.socket.expect({ type: 'history', thread_id: group }, 'messages');
      assert.deepEqual(history.messages.at(-1).body, { event: 'member_removed', user_id: member.id });
      assert.equal((await m.socket.request({ type: 'send', thread_id: group, client_msg_id: 'late', body: { text: 'x' } })).error.code, 'forbidden');
      const list = await m.socket.expect({ type: 'threads' }, 'threads');
      assert.deepEqual([list.threads[0].member, list.threads[0].member_count], [false, 0]);
      const asFormer = await m.socket.expect({ type: 'thread_get', thread_id: group }, 'thread');
      assert.deepEqual([asFormer.members, asFormer.thread.member_count], [[], 0], 'a former member no longer sees who is in the group');
      await m.socket.expect({ type: 'read', thread_id: group, seq: 100 }, 'read_state');
      await o.socket.expect({ type: 'ping' }, 'pong');
      assert.equal(o.socket.drain((f) => f.type === 'receipt' && f.user_id === member.id && f.kind === 'read').length, 0, 'nor tells it what they read');
      // Three members left; six more would pass messages.max_group_members (8).
      const crowd = await Promise.all(Array.from({ length: 6 }, () => person('crowd')));
      const full = await o.socket.request({ type: 'group_add', thread_id: group, members: crowd.map((p) => p.id) });
      assert.equal(full.error.code, 'invalid_field');
      assert.match(full.error.message, /at most 8 members/);
      for (const socket of [o.socket, ad.socket, m.socket, n.socket]) socket.close();
    });

    test('large groups (read diffusion): online devices get messages live, offline ones catch up by sync', async () => {
      const people = await Promise.all(Array.from({ length: 6 }, () => person('big')));
      const [first, ...rest] = people;
      const online = await connect(first!.tokens[0] as string);
      const listener = await connect(rest[0]!.tokens[0] as string);
      const group = (await online.socket.expect({ type: 'group_create', title: 'Big', members: rest.map((p) => p.id) }, 'thread')).thread.id;
      // On two nodes the listener's node subscribes the new group's channel when the membership change reaches it: a
      // message published before is lost there by design, and with no later message nothing would fill it in.
      await deployment.listening(group);
      await send(online.socket, group, 'to many');
      assert.deepEqual((await listener.socket.nextEvent((f) => f.type === 'message' && f.message.kind === 'text')).message.body, { text: 'to many' });
      const offline = await connect(rest[1]!.tokens[0] as string);
      assert.equal(offline.inbox.length, 0, 'no inbox rows above messages.read_diffusion_above');
      const synced = await offline.socket.expect({ type: 'sync' }, 'sync');
      assert.deepEqual(
        bodies(synced.threads[0].messages.map((message: any) => ({ message }))).at(-1),
        { text: 'to many' },
      );
      for (const socket of [online.socket, listener.socket, offline.socket]) socket.close();
    });

    test('presence: online to contacts and thread partners only, offline after the grace period, with last_active_at', async () => {
      const alice = await person('alice');
      const bob = await person('bob');
      const stranger = await person('stranger');
      const a = await connect(alice.tokens[0] as string);
      await direct(a.socket, bob.id);
      const s = await connect(stranger.tokens[0] as string);
      const b = await connect(bob.tokens[0] as string);
      assert.deepEqual(await a.socket.nextEvent('presence_update'), { type: 'presence_update', user_id: bob.id, online: true, last_active_at: (await a.socket.expect({ type: 'presence', user_ids: [bob.id] }, 'presence')).users[0].last_active_at });
      const hidden = await s.socket.expect({ type: 'presence', user_ids: [bob.id, alice.id] }, 'presence');
      assert.deepEqual(hidden.users, [], 'a stranger learns nothing');
      // A quick reconnect within the grace period is not announced.
      b.socket.close();
      await b.socket.closed;
      const back = await connect(bob.tokens[0] as string);
      back.socket.close();
      await back.socket.closed;
      const offline = await a.socket.nextEvent('presence_update');
      assert.equal(offline.online, false);
      assert.ok(offline.last_active_at > 0);
      // What was announced is what was stored.
      const stored = await a.socket.expect({ type: 'presence', user_ids: [bob.id] }, 'presence');
      assert.deepEqual(stored.users[0], { user_id: bob.id, online: false, last_active_at: offline.last_active_at });
      assert.equal(a.socket.drain('presence_update').length, 0, 'one offline, no flapping');
      assert.equal(s.socket.drain('presence_update').length, 0);
      // Adding a contact shows them your presence.
      await s.socket.expect({ type: 'contact_add', user_id: alice.id }, 'ok');
      const contacts = await s.socket.expect({ type: 'contacts' }, 'contacts');
      assert.deepEqual(contacts.contacts.map((c: any) => [c.user.id, c.presence]), [[alice.id, null]], "alice's presence stays hers to share");
      await a.socket.expect({ type: 'contact_add', username: stranger.name }, 'ok');
      const visible = await s.socket.expect({ type: 'presence', user_ids: [alice.id] }, 'presence');
      assert.equal(visible.users[0].online, true);
      a.socket.close();
      s.socket.close();
    });

    test('a connection marks its device seen', async () => {
      const carol = await person('carol', 2);
      const listed = async (): Promise<Array<{ id: number; last_seen_at: number }>> =>
        (await request(`${deployment.urlOf(carol.tokens[1] as string)}/v1/devices`, { token: carol.tokens[1] as string })).body.devices;
      const [phone] = await listed();
      assert.ok(phone);
      // The clock moves past the login's own last_seen_at, so only the connection can account for a later one.
      const loggedInAt = phone.last_seen_at;
      while (Date.now() <= loggedInAt) await new Promise((resolve) => setTimeout(resolve, 1));
      const c = await connect(carol.tokens[0] as string);
      const seen = (await listed()).find((device) => device.id === phone.id);
      assert.ok(seen && seen.last_seen_at > loggedInAt, `last_seen_at ${seen?.last_seen_at} follows the connection (logged in at ${loggedInAt})`);
      c.socket.close();
    });

    test('typing: fanned out to the thread, never stored', async () => {
      const alice = await person('alice');
      const bob = await person('bob');
      const [a, b] = await Promise.all([connect(alice.tokens[0] as string), connect(bob.tokens[0] as string)]);
      const thread = await direct(a.socket, bob.id);
      await deployment.listening(thread);
      await a.socket.expect({ type: 'typing', thread_id: thread }, 'ok');
      assert.deepEqual(await b.socket.nextEvent('typing'), { type: 'typing', thread_id: thread, user_id: alice.id, device_id: a.welcome.device_id });
      const history = await b.socket.expect({ type: 'history', thread_id: thread }, 'messages');
      assert.equal(history.messages.length, 0);
      a.socket.close();
      b.socket.close();
    });

    test('bad input: clear errors, the connection stays usable; a too-large body is refused', async () => {
      const alice = await person('alice');
      const bob = await person('bob');
      const a = await connect(alice.tokens[0] as string);
      const thread = await direct(a.socket, bob.id);
      const cases: Array<[Record<string, unknown>, string, RegExp]> = [
        [{ type: 'send', thread_id: thread, client_msg_id: 'a' }, 'invalid_field', /body is required/],
        [{ type: 'send', thread_id: 'x', client_msg_id: 'a', body: 1 }, 'invalid_field', /thread_id must be a positive integer/],
        [{ type: 'send', thread_id: thread, client_msg_id: 'big', body: { text: 'x'.repeat(3000) } }, 'payload_too_large', /larger than the limit of 2048/],
        [{ type: 'read', thread_id: thread, seq: -1 }, 'invalid_field', /seq must be an integer/],
        [{ type: 'group_create', title: '   ' }, 'invalid_field', /title/],
        [{ type: 'direct_open', user_id: alice.id }, 'invalid_field', /another user/],
      ];
      for (const [frame, code, message] of cases) {
        const reply = await a.socket.request(frame);
        assert.equal(reply.error?.code, code, JSON.stringify(reply));
        assert.match(reply.error.message, message);
      }
      // Over websocket.max_frame_bytes (65536): an error, not a disconnect.
      const oversized = await a.socket.request({ type: 'ping', pad: 'x'.repeat(70_000) });
      assert.equal(oversized.error?.code ?? oversized.type, 'payload_too_large');
      assert.equal((await send(a.socket, thread, 'still fine')).seq, 1);
      a.socket.close();
    });

    test('a flood past the rate limit closes the abuser only (4004); others carry on', async () => {
      const alice = await person('alice');
      const bob = await person('bob');
      const [a, b] = await Promise.all([connect(alice.tokens[0] as string), connect(bob.tokens[0] as string)]);
      for (let i = 0; i < 1000; i++) a.socket.send({ type: 'ping', id: `p${i}` });
      const closed = await a.socket.closed;
      assert.equal(closed.code, 4004);
      assert.ok(a.socket.drain((f) => f.type === 'error' && f.error.code === 'rate_limited').length > 0, 'told before being cut');
      assert.deepEqual(await b.socket.request({ type: 'ping' }), { type: 'pong', id: 'r1' });
      b.socket.close();
    });

    test('repeated garbage closes the connection (1008)', async () => {
      const alice = await person('alice');
      const a = await connect(alice.tokens[0] as string);
      for (let i = 0; i < 25; i++) a.socket.send('{nope');
      assert.equal((await a.socket.closed).code, 1008);
    });
  });
}

describe('slow consumers', () => {
  let server: ServerProcess;

  before(async () => {
    const dir = tempDir();
    server = await startServer([
      '--data',
      `${dir}/data`,
      '--config',
      writeConfig(
        dir,
        `
[accounts]
registration = "open"
[messages]
max_body_bytes = 65536
[websocket]
max_frame_bytes = 131072
frames_per_second = 10000
max_buffered_bytes = 524288
[limits]
user_sends_per_second = 100000
`,
      ),
    ]);
  });
  after(() => server.stop());

  it('a reader that stops reading is cut (4005) without stalling the others', async () => {
    const [alice, bob, carol] = [await signUp(server.url, 'alice'), await signUp(server.url, 'bob'), await signUp(server.url, 'carol')];
    const [a, b, c] = await Promise.all([alice, bob, carol].map((p) => connectAuthenticated(server.wsUrl, p.token)));
    const group = (await a!.socket.expect({ type: 'group_create', title: 'Firehose', members: [bob.userId, carol.userId] }, 'thread')).thread.id;
    // Bob's client stops reading: the kernel buffers fill, then the server's queue for him grows.
    (b!.socket.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const big = 'x'.repeat(60_000);
    let acked = 0;
    const received = new Set<number>();
    const counting = Promise.race([
      (async () => {
        for (;;) {
          const frame = await c!.socket.nextEvent((f) => f.type === 'message' && f.message.kind === 'text');
          received.add(frame.message.seq);
          if (frame.message.body.last) return;
        }
      })(),
      c!.socket.closed.then(({ code }) => assert.fail(`carol, who reads, was disconnected (${code})`)),
    ]);
    const cut = (): boolean => server.logs.some((line) => line.msg === 'slow consumer disconnected' && line.device === bob.deviceId);
    while (!cut() && acked < 5000) {
      await a!.socket.expect({ type: 'send', thread_id: group, client_msg_id: `big-${acked}`, body: { pad: big } }, 'ack');
      acked++;
    }
    assert.ok(cut(), 'the server cut the slow reader');
    await a!.socket.expect({ type: 'send', thread_id: group, client_msg_id: 'last', body: { last: true } }, 'ack');
    (b!.socket.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    // The close frame queues behind what bob never read; uWS may give up on it and drop the connection (1006).
    assert.ok([4005, 1006].includes((await b!.socket.closed).code));
    await counting;
    assert.equal(received.size, acked + 1, 'carol got every message');
    // Bob catches up from his inbox on reconnect.
    const back = await connectAuthenticated(server.wsUrl, bob.token);
    assert.equal(back.inbox.filter((frame) => frame.message.kind === 'text').length, acked + 1);
    for (const socket of [a!.socket, c!.socket, back.socket]) socket.close();
  });
});
