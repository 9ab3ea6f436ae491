import assert from 'node:assert/strict';
import { copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { AccountApi, ChatClient, type ChatClientOptions, FileStore, type MessageJson } from '../../src/client/node.js';
import type { SocketLike, WebSocketConstructor } from '../../src/client/socket.js';
import { type ServerProcess, runCli, startServer } from '../helpers/processes.js';
import { ClientEvents } from '../helpers/client-events.js';
import { TcpProxy } from '../helpers/proxy.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';

/**
 * The SDK against the real server over real sockets, with the network faults
 * a client meets made by a TCP proxy in between and by killing the server.
 */
describe('the client SDK', () => {
  const dir = tempDir();
  const config = writeConfig(
    dir,
    `
[accounts]
registration = "open"
[rate_limit]
login_per_address = 100000
[websocket]
heartbeat_interval_ms = 200
heartbeat_timeout_ms = 5000
frames_per_second = 500
max_frame_bytes = 4096
[messages]
max_body_bytes = 2048
read_diffusion_above = 2
[presence]
offline_grace_ms = 100
`,
  );
  const serverArgs = ['--data', join(dir, 'data'), '--config', config];
  let server: ServerProcess;
  let proxy: TcpProxy;
  let users = 0;
  const clients: ChatClient[] = [];

  before(async () => {
    server = await startServer(serverArgs);
    proxy = await TcpProxy.start(server.port);
  });
  after(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await proxy.close();
    await server.stop();
  });

  /** Fast reconnects; a silent connection is given up after 1 s without any frame. */
  const clientOptions = (token: string, extra: Partial<ChatClientOptions> = {}): ChatClientOptions => ({
    server: proxy.url,
    token,
    reconnect: { initialDelayMs: 50, maxDelayMs: 400 },
    heartbeatReplyTimeoutMs: 1000,
    requestTimeoutMs: 10_000,
    ...extra,
  });

  const register = (prefix: string): Promise<string> => registerOn(server, prefix);

  async function registerOn(on: ServerProcess, prefix: string): Promise<string> {
    const name = `${prefix}${++users}`;
    await new AccountApi(on.url).register({ username: name, password: 'correct horse' });
    return name;
  }

  /** A device of `username`, started and caught up, recording every message it is given. */
  async function device(username: string, extra: Partial<ChatClientOptions> = {}): Promise<Recorded> {
    const login = await new AccountApi(extra.server ?? server.url).login({ username, password: 'correct horse', device_name: 'sdk test', platform: 'bot' });
    return start(new ChatClient(clientOptions(login.token, extra)));
  }

  async function start(client: ChatClient): Promise<Recorded> {
    clients.push(client);
    const recorded = new Recorded(client);
    await client.start();
    await client.whenOnline();
    return recorded;
  }

  it('delivers every message once and in order when the server is killed and restarted mid-conversation', { timeout: 30_000 }, async () => {
    const alice = await device(await register('alice'));
    const bob = await device(await register('bob'));
    const thread = await alice.client.openDirect(bob.client.user!.username);
    const texts = Array.from({ length: 60 }, (_, i) => `m${i}`);
    const sends = texts.slice(0, 30).map((text) => alice.client.send(thread.id, { text }));
    await sends[5];
    const killed = server.stop('SIGKILL');
    // Queued while the server is down or coming back: sent when the client reconnects.
    sends.push(...texts.slice(30).map((text) => alice.client.send(thread.id, { text })));
    await killed;
    server = await startServer(serverArgs);
    proxy.target(server.port);
    const acks = await Promise.all(sends);

    assert.deepEqual(acks.map((ack) => ack.seq), texts.map((_, i) => i + 1), 'each message stored once, in the order sent');
    await bob.untilMessages((messages) => messages.length >= texts.length);
    await alice.untilMessages((messages) => messages.length >= texts.length);
    for (const party of [alice, bob]) {
      assert.deepEqual(party.texts(thread.id), texts);
      assert.deepEqual(party.seqs(thread.id), texts.map((_, i) => i + 1));
    }
    assert.equal(alice.client.pending().length, 0);
    assert.ok(alice.states.includes('offline') && bob.states.includes('offline'), 'both saw the server go');
  });

  it('reconnects after a network cut without a close frame, and notices a silent connection by its missing heartbeat reply', { timeout: 30_000 }, async () => {
    const alice = await device(await register('alice'));
    const bob = await device(await register('bob'));
    const thread = await alice.client.openDirect(bob.client.user!.username);
    await alice.client.send(thread.id, { text: 'before' });

    const back = [alice, bob].map((party) => party.client.once('state', (change) => change.state === 'online'));
    proxy.cut();
    await alice.client.send(thread.id, { text: 'during the cut' });
    // Both reconnected and caught up: the stall below hits live connections, not a handshake.
    await Promise.all(back);

    const silentAlice = alice.client.once('state', (change) => change.state === 'offline');
    const silentBob = bob.client.once('state', (change) => change.state === 'offline');
    proxy.stall();
    const duringStall = alice.client.send(thread.id, { text: 'during the stall' });
    assert.equal((await silentAlice).reason, 'heartbeat_timeout');
    assert.equal((await silentBob).reason, 'heartbeat_timeout');
    await duringStall;

    await bob.untilMessages((messages) => messages.length >= 3);
    assert.deepEqual(bob.texts(thread.id), ['before', 'during the cut', 'during the stall']);
    assert.deepEqual(bob.seqs(thread.id), [1, 2, 3]);
    assert.ok(bob.endReasons.includes('connection_lost'), `bob saw the cut as a lost connection: ${bob.endReasons.join(', ')}`);
  });

  it('gives two devices of the same user every message of a group, and follows the sender’s messages to read', { timeout: 30_000 }, async () => {
    const aliceName = await register('alice');
    const alice1 = await device(aliceName);
    const alice2 = await device(aliceName);
    const bob = await device(await register('bob'));
    const carol = await device(await register('carol'));
    const group = await alice1.client.createGroup('four', [bob.client.user!.username, carol.client.user!.username]);
    const statuses: string[] = [];
    alice1.client.on('status', (change) => statuses.push(`${change.client_msg_id}:${change.status}`));

    for (let i = 0; i < 5; i++) {
      await alice1.client.send(group.id, { text: `alice ${i}` }, { clientMsgId: `a${i}` });
      await bob.client.send(group.id, { text: `bob ${i}` });
    }
    await alice2.untilMessages((messages) => messages.length >= 11);
    await alice1.untilMessages((messages) => messages.length >= 11);
    const expected = ['group_created', ...Array.from({ length: 5 }, (_, i) => [`alice ${i}`, `bob ${i}`]).flat()];
    assert.deepEqual(alice1.texts(group.id), expected);
    assert.deepEqual(alice2.texts(group.id), expected);
    assert.deepEqual(alice2.seqs(group.id), expected.map((_, i) => i + 1));

    await carol.untilMessages((messages) => messages.length >= 11);
    const read = alice1.client.once('status', (change) => change.client_msg_id === 'a4' && change.status === 'read');
    await carol.client.markRead(group.id);
    await read;
    assert.ok(statuses.indexOf('a0:sent') < statuses.indexOf('a0:delivered'));
    assert.ok(statuses.indexOf('a0:delivered') < statuses.indexOf('a0:read'));
  });

  it('marks read everything the app was given, when a thread’s details arrive behind its messages', { timeout: 30_000 }, async () => {
    const alice = await device(await register('alice'));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const carol = await device(await register('carol'), { WebSocket: holdingThreadReplies(released) });
    const group = await alice.client.createGroup('late details', [carol.client.user!.username]);
    for (let i = 0; i < 5; i++) await alice.client.send(group.id, { text: `late ${i}` });
    await carol.untilMessages((messages) => messages.filter((message) => message.thread_id === group.id).length >= 6);
    // The thread_get carol's SDK made on the group's first message was answered then, with last_seq 1.
    const details = carol.client.once('thread', ({ thread }) => thread.id === group.id);
    release();
    await details;
    const state = await carol.client.markRead(group.id);
    assert.equal(state.read_seq, 6, 'read up to the last message carol was given, not the stale last_seq');
  });

  it('answers receipts(): who has read a message, whose devices have it, who is still waiting; any member may ask, others get not_found', { timeout: 30_000 }, async () => {
    const alice = await device(await register('alice'));
    const bob = await device(await register('bob'));
    const carol = await device(await register('carol'));
    const dave = await registerOn(server, 'dave'); // no device: nothing of his has anything
    const outsider = await device(await register('eve'));
    const group = await alice.client.createGroup('info', [bob.client.user!.username, carol.client.user!.username, dave]);
    const carolId = carol.client.user!.id;
    // The author hears every receipt about her message: how the test knows carol's device has acked it.
    const carolAcked = alice.client.once('receipt', (receipt) => receipt.user_id === carolId && receipt.kind === 'delivered' && receipt.seq >= 2);
    const ack = await alice.client.send(group.id, { text: 'who has this?' });
    await bob.untilMessages((messages) => messages.some((m) => m.seq === ack.seq));
    await bob.client.markRead(group.id, ack.seq);
    await carolAcked;

    const { members } = await alice.client.thread(group.id);
    const daveId = members.find((member) => member.user.username === dave)!.user.id;
    const expected = { read: [bob.client.user!.id], delivered: [carolId], pending: [daveId] };
    assert.deepEqual(await alice.client.receipts(group.id, ack.seq), expected, 'the author is left out');
    assert.deepEqual(await carol.client.receipts(group.id, ack.seq), expected, 'any member may ask');
    // One at a time: a second request made before the first is awaited would reject with no handler yet.
    const notFound = (error: Error & { code?: string }): boolean => error.code === 'not_found';
    await assert.rejects(outsider.client.receipts(group.id, ack.seq), notFound, 'not a member');
    await assert.rejects(alice.client.receipts(group.id, ack.seq + 100), notFound, 'no such message');
  });

  it('reports typing, presence, thread changes and unread counts as typed events', { timeout: 30_000 }, async () => {
    const alice = await device(await register('alice'));
    const bob = await device(await register('bob'));
    const bobName = bob.client.user!.username;

    const created = bob.client.once('thread', (change) => change.reason === 'new');
    const group = await alice.client.createGroup('events', [bobName]);
    assert.equal((await created).thread.id, group.id, 'bob learns of the thread he was added to');

    const typing = bob.client.once('typing', (event) => event.thread_id === group.id);
    await alice.client.typing(group.id);
    assert.equal((await typing).user_id, alice.client.user!.id);

    const unread = bob.client.once('thread', (change) => change.thread.id === group.id && change.thread.unread === 3);
    await alice.client.send(group.id, { text: 'one' });
    await alice.client.send(group.id, { text: 'two' });
    await unread;
    assert.equal(bob.client.unread(group.id), 3, 'the group_created system message counts too');
    const cleared = bob.client.once('thread', (change) => change.reason === 'read' && change.thread.unread === 0);
    await bob.client.markRead(group.id);
    await cleared;
    assert.equal(bob.client.unread(), 0);

    const renamed = bob.client.once('thread', (change) => change.reason === 'changed' && change.thread.title === 'renamed');
    await alice.client.renameGroup(group.id, 'renamed');
    await renamed;

    // Bob shares a thread with alice, so he sees her go offline (after the server's grace period).
    const offline = bob.client.once('presence', (presence) => presence.user_id === alice.client.user!.id && !presence.online);
    await alice.client.close();
    assert.equal((await offline).online, false);
  });

  it('gives a device with an empty store only the unread messages, even those waiting in its inbox', { timeout: 30_000 }, async () => {
    const aliceName = await register('alice');
    const phone = await device(aliceName);
    const bob = await device(await register('bob'));
    // A second device that has logged in but not connected: its inbox fills.
    const laptop = await new AccountApi(server.url).login({ username: aliceName, password: 'correct horse', device_name: 'laptop', platform: 'bot' });
    const thread = await bob.client.openDirect(aliceName);
    for (const text of ['one', 'two', 'three']) await bob.client.send(thread.id, { text });
    await phone.untilMessages((messages) => messages.length >= 3);
    await phone.client.markRead(thread.id, 2);

    const fresh = await start(new ChatClient(clientOptions(laptop.token)));
    await fresh.client.history(thread.id); // a round trip: anything else the inbox held has arrived by now
    assert.deepEqual(fresh.texts(thread.id), ['three']);
    assert.equal(fresh.client.unread(thread.id), 1);
  });

  it('catches up a user with more threads than one sync frame can list', { timeout: 60_000 }, async () => {
    const name = await register('many');
    const first = await device(name);
    for (let i = 0; i < 200; i++) await first.client.createGroup(`g${i}`, []);
    // Starts afresh: one cursor per thread, about 200 × 27 bytes, over the 4 KiB frame limit.
    const second = await device(name);
    const last = await first.client.createGroup('last', []);
    await first.client.send(last.id, { text: 'newest' });
    await second.untilMessages((messages) => messages.some((m) => m.thread_id === last.id && m.seq === 2));
    assert.equal(second.states.filter((state) => state === 'offline').length, 0, 'no reconnect was needed');
  });

  it('refuses cleanly what cannot work: a send before start, a server URL no WebSocket can open, another account’s outbox', { timeout: 30_000 }, async () => {
    const unstarted = new ChatClient(clientOptions('no-token'));
    await assert.rejects(unstarted.send(1, { text: 'too early' }), { code: 'closed' });

    // start() not awaited: whenOnline waits for it rather than taking "not yet running" for "stopped".
    const eager = new ChatClient(clientOptions((await new AccountApi(server.url).login({ username: await register('eager'), password: 'correct horse', device_name: 'x', platform: 'bot' })).token));
    clients.push(eager);
    void eager.start();
    await eager.whenOnline();
    // A send still being stored when the client closes settles (rejects) like the sends before it.
    const racing = eager.send((await eager.openDirect(await register('peer'))).id, { text: 'racing close' });
    await eager.close();
    await assert.rejects(racing, { code: 'closed' });

    const badUrl = new ChatClient(clientOptions('no-token', { server: 'ftp://127.0.0.1:1' }));
    const stopped = badUrl.once('state', (change) => change.state === 'stopped');
    await badUrl.start();
    assert.equal((await stopped).reason, 'cannot_connect');
    await assert.rejects(badUrl.whenOnline(), { code: 'network' });

    // One store, used by alice and then (wrongly) by bob: alice's unsent message must not go out as bob's.
    const storePath = join(tempDir(), 'shared.json');
    const aliceName = await register('alice');
    const bobName = await register('bob');
    const aliceLine = await TcpProxy.start(server.port);
    const alice = await device(aliceName, { server: aliceLine.url, store: new FileStore(storePath) });
    const thread = await alice.client.openDirect(bobName);
    aliceLine.refuse(true);
    aliceLine.cut();
    const queued = alice.client.send(thread.id, { text: 'for bob from alice' }, { clientMsgId: 'alices' }).catch((error: Error) => error);
    await alice.client.once('state', (change) => change.pending === 1);
    await alice.client.close();
    await aliceLine.close();
    assert.equal(((await queued) as { code?: string }).code, 'closed');

    const bob = await device(bobName, { store: new FileStore(storePath) });
    assert.equal(bob.client.pending().length, 0, 'alice’s message was dropped, not sent by bob');
    const history = await bob.client.history(thread.id);
    assert.deepEqual(history.messages, []);
  });

  it('catches a device up by sync on a large group it was offline for (no inbox there)', { timeout: 30_000 }, async () => {
    const alice = await device(await register('alice'));
    const bob = await device(await register('bob'));
    const carolLine = await TcpProxy.start(server.port);
    const carol = await device(await register('carol'), { server: carolLine.url });
    const group = await alice.client.createGroup('large', [bob.client.user!.username, carol.client.user!.username]);
    await carol.untilMessages((messages) => messages.length >= 1);

    const away = carol.client.once('state', (change) => change.state === 'offline');
    carolLine.refuse(true);
    carolLine.cut();
    await away;
    for (let i = 0; i < 4; i++) await alice.client.send(group.id, { text: `while away ${i}` });
    carolLine.refuse(false);
    await carol.untilMessages((messages) => messages.length >= 5);
    assert.deepEqual(carol.texts(group.id), ['group_created', ...[0, 1, 2, 3].map((i) => `while away ${i}`)]);
    assert.deepEqual(carol.seqs(group.id), [1, 2, 3, 4, 5]);
    await carolLine.close();
  });

  it('resends after an app restart what a persistent store held, including a send whose ack was lost', { timeout: 30_000 }, async () => {
    const aliceName = await register('alice');
    const bob = await device(await register('bob'));
    const login = await new AccountApi(server.url).login({ username: aliceName, password: 'correct horse', device_name: 'app', platform: 'bot' });
    const storePath = join(tempDir(), 'alice.json');
    // Alice's own line to the server, so it can fail alone.
    const aliceLine = await TcpProxy.start(server.port);
    const first = await start(new ChatClient(clientOptions(login.token, { server: aliceLine.url, store: new FileStore(storePath) })));
    const thread = await first.client.openDirect(bob.client.user!.username);
    await bob.client.send(thread.id, { text: 'hello alice' });
    await first.untilMessages((messages) => messages.length >= 1);

    // The line goes one-way: this send reaches the server, its ack never comes back.
    aliceLine.stall('replies');
    aliceLine.refuse(true);
    void first.client.send(thread.id, { text: 'ack lost' }, { clientMsgId: 'lost-ack' }).catch(() => {});
    await bob.untilMessages((messages) => messages.some((m) => m.client_msg_id === 'lost-ack'));
    // And these never leave the app before it quits.
    const stored = first.client.once('state', (change) => change.pending === 3);
    for (const text of ['queued 1', 'queued 2']) void first.client.send(thread.id, { text }).catch(() => {});
    await stored;
    await first.client.close();

    aliceLine.refuse(false);
    const restartedClient = new ChatClient(clientOptions(login.token, { server: aliceLine.url, store: new FileStore(storePath) }));
    const allSent = restartedClient.once('state', (change) => change.pending === 0 && change.state === 'online');
    const restarted = await start(restartedClient);
    await allSent;
    await bob.untilMessages((messages) => messages.length >= 4);
    assert.deepEqual(bob.texts(thread.id), ['hello alice', 'ack lost', 'queued 1', 'queued 2']);
    assert.deepEqual(bob.seqs(thread.id), [1, 2, 3, 4]);
    await restarted.untilMessages((messages) => messages.length >= 3);
    assert.deepEqual(restarted.texts(thread.id), ['ack lost', 'queued 1', 'queued 2'], 'what the app had before the restart is not given again');
    await aliceLine.close();
  });

  it('starts afresh after the server is restored from a backup (a new epoch), so reused seqs are not taken for repeats', { timeout: 30_000 }, async () => {
    const data = join(tempDir(), 'data');
    const args = ['--data', data, '--config', config];
    let own = await startServer(args);
    const line = await TcpProxy.start(own.port);
    try {
      const alice = await device(await registerOn(own, 'alice'), { server: line.url });
      const bob = await device(await registerOn(own, 'bob'), { server: line.url });
      const thread = await alice.client.openDirect(bob.client.user!.username);
      for (const text of ['one', 'two']) await alice.client.send(thread.id, { text });
      const backup = await runCli(['db', 'backup', join(data, 'backup.db'), '--data', data]);
      assert.equal(backup.code, 0, backup.stderr);
      await alice.client.send(thread.id, { text: 'lost in the restore' });
      await bob.untilMessages((messages) => messages.length >= 3);

      await own.stop();
      copyFileSync(join(data, 'backup.db'), join(data, 'chatd.db'));
      for (const suffix of ['-wal', '-shm']) rmSync(join(data, `chatd.db${suffix}`), { force: true });
      const reset = bob.client.once('reset');
      own = await startServer(args);
      line.target(own.port);
      assert.deepEqual(await reset, { reason: 'epoch' });
      const before = bob.messages.length;
      await alice.client.whenOnline();
      await alice.client.send(thread.id, { text: 'after the restore' });
      await bob.untilMessages((messages) => messages.some((m) => (m.body as { text: string }).text === 'after the restore'));
      const afresh = bob.messages.slice(before).map((m) => [m.seq, (m.body as { text: string }).text]);
      assert.deepEqual(afresh, [[1, 'one'], [2, 'two'], [3, 'after the restore']], 'seq 3 again, with other content: given, not dropped');
    } finally {
      await line.close();
      await own.stop();
    }
  });
});

/** Everything a client emitted, with waits on it. */
class Recorded extends ClientEvents {
  /** Once `done` holds for the messages so far (a regression fails within the deadline, naming `done`). */
  untilMessages(done: (messages: MessageJson[]) => boolean): Promise<void> {
    return this.until(() => (done(this.messages) ? true : undefined), `messages where ${String(done)}`).then(() => undefined);
  }

  texts(threadId: number): unknown[] {
    return this.messages
      .filter((m) => m.thread_id === threadId)
      .map((m) => (m.kind === 'system' ? (m.body as { event: string }).event : (m.body as { text: string }).text));
  }

  seqs(threadId: number): number[] {
    return this.messages.filter((m) => m.thread_id === threadId).map((m) => m.seq);
  }
}

/**
 * A WebSocket (the ws package) whose `thread` replies wait for `released`:
 * the frames behind them, messages sent meanwhile, reach the client first, as
 * they can when the server answered a thread_get before those messages committed.
 */
function holdingThreadReplies(released: Promise<void>): WebSocketConstructor {
  return class implements SocketLike {
    onopen: SocketLike['onopen'] = null;
    onmessage: SocketLike['onmessage'] = null;
    onclose: SocketLike['onclose'] = null;
    onerror: SocketLike['onerror'] = null;
    private readonly socket: WebSocket;

    constructor(url: string) {
      this.socket = new WebSocket(url);
      this.socket.onopen = (event) => this.onopen?.(event);
      this.socket.onclose = (event) => this.onclose?.({ code: event.code, reason: event.reason });
      this.socket.onerror = (event) => this.onerror?.(event);
      this.socket.onmessage = (event) => {
        const deliver = (): void => this.onmessage?.({ data: event.data });
        if (String(event.data).includes('"type":"thread"')) void released.then(deliver);
        else deliver();
      };
    }

    get readyState(): number {
      return this.socket.readyState;
    }

    send(data: string): void {
      this.socket.send(data);
    }

    close(code?: number, reason?: string): void {
      this.socket.close(code, reason);
    }
  };
}
