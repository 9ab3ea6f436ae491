import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AccountApi, ChatClient, type ChatClientOptions, MemoryStore, type TransportKind } from '../../src/client/node.js';
import { ClientEvents } from '../helpers/client-events.js';
import { type ServerProcess, startServer } from '../helpers/processes.js';
import { TcpProxy } from '../helpers/proxy.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { transports } from '../helpers/transports.js';

/**
 * The SDK on networks that break WebSockets: through a proxy that refuses
 * upgrades it falls back to the stream transport and chats; it goes back to
 * the WebSocket once upgrades get through; behind a proxy that buffers
 * responses it ends on long polls; a cut stream resumes, and one whose
 * frames the server no longer keeps reconnects and catches up — every
 * message once, counted by (thread, seq).
 */
for (const transport of transports('the SDK’s fallback transports')) {
  describe(`the SDK falls back by itself (server on the ${transport} transport)`, () => {
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
[stream]
resume_frames = 16
keepalive_ms = 500
poll_timeout_ms = 1000
`,
    );
    let server: ServerProcess;
    let users = 0;
    const clients: ChatClient[] = [];
    const proxies: TcpProxy[] = [];

    before(async () => {
      server = await startServer(['--data', join(dir, 'data'), '--config', config, '--transport', transport]);
    });
    after(async () => {
      await Promise.all(clients.map((client) => client.close()));
      await Promise.all(proxies.map((proxy) => proxy.close()));
      await server.stop();
    });

    async function line(options: { bufferStreams?: boolean; refuseUpgrades?: boolean } = {}): Promise<TcpProxy> {
      const proxy = await TcpProxy.start(server.port, { bufferStreams: options.bufferStreams ?? false });
      proxy.refuseUpgrades(options.refuseUpgrades ?? true);
      proxies.push(proxy);
      return proxy;
    }

    async function login(prefix: string): Promise<{ username: string; token: string }> {
      const username = `${prefix}${++users}`;
      const api = new AccountApi(server.url);
      await api.register({ username, password: 'correct horse' });
      const { token } = await api.login({ username, password: 'correct horse', device_name: 'fallback test', platform: 'bot' });
      return { username, token };
    }

    /** A client through `proxy`, started and online. */
    async function device(proxy: TcpProxy, token: string, extra: Partial<ChatClientOptions> = {}): Promise<Recorded> {
      const client = new ChatClient({
        server: proxy.url,
        token,
        reconnect: { initialDelayMs: 50, maxDelayMs: 400 },
        heartbeatReplyTimeoutMs: 2000,
        requestTimeoutMs: 10_000,
        connectTimeoutMs: 1500,
        websocketRetryMs: 300,
        ...extra,
      });
      clients.push(client);
      const recorded = new Recorded(client);
      await client.start();
      await client.whenOnline();
      return recorded;
    }

    it('falls back to the stream when WebSocket upgrades are refused, chats both ways, and switches back when they are allowed, nothing lost or twice', { timeout: 60_000 }, async () => {
      const proxy = await line();
      const alice = await login('alice');
      const bob = await login('bob');
      const bobStore = new MemoryStore();
      const a = await device(proxy, alice.token);
      let b = await device(proxy, bob.token, { store: bobStore });
      assert.equal(a.client.transport, 'stream');
      assert.equal(b.client.transport, 'stream');
      assert.deepEqual(a.transports, ['stream']);
      assert.ok(proxy.upgradesRefused >= 4, `each client tried the WebSocket twice first (${proxy.upgradesRefused} refused)`);

      const thread = await a.client.openDirect(bob.username);
      const delivered = a.client.once('status', (change) => change.client_msg_id === 'a0' && change.status === 'delivered');
      for (let i = 0; i < 5; i++) await a.client.send(thread.id, { text: `a${i}` }, { clientMsgId: `a${i}` });
      await delivered;
      for (let i = 0; i < 5; i++) await b.client.send(thread.id, { text: `b${i}` });
      await a.untilSeqs(thread.id, 10);
      await b.untilSeqs(thread.id, 10);

      // Offline: what is sent meanwhile waits in bob's inbox and comes down the stream when he is back.
      await b.client.close();
      for (let i = 0; i < 3; i++) await a.client.send(thread.id, { text: `offline ${i}` });
      const before = b;
      b = await device(proxy, bob.token, { store: bobStore });
      assert.equal(b.client.transport, 'stream');
      await b.untilSeqs(thread.id, 13);
      assert.deepEqual(b.seqs(thread.id), [11, 12, 13], 'the new client of the same store gets only what it missed');
      before.assertOnce(thread.id);

      // WebSockets get through again: both switch back while alice keeps sending.
      const switched = [a, b].map((party) => party.client.once('transport', (change) => change.transport === 'websocket'));
      proxy.refuseUpgrades(false);
      const sends: Array<Promise<unknown>> = [];
      for (let i = 0; i < 20; i++) sends.push(a.client.send(thread.id, { text: `across ${i}` }));
      await Promise.all(switched);
      for (let i = 0; i < 5; i++) sends.push(b.client.send(thread.id, { text: `after ${i}` }));
      await Promise.all(sends);
      assert.equal(a.client.transport, 'websocket');
      assert.equal(b.client.transport, 'websocket');
      await a.untilSeqs(thread.id, 38);
      await b.untilSeqs(thread.id, 38);
      a.assertOnce(thread.id, 38);
      b.assertOnce(thread.id, 38, 11);
      assert.deepEqual(a.transports, ['stream', 'websocket']);
      assert.deepEqual(b.texts(thread.id).filter((text) => text.startsWith('across')), Array.from({ length: 20 }, (_, i) => `across ${i}`), 'in the order sent');
    });

    it('leaves no stream session on the server once it switches back to the WebSocket, or is closed', { timeout: 60_000 }, async () => {
      const proxy = await line();
      const alice = await login('alice');
      const bob = await login('bob');
      const aliceFetch = new RecordingFetch();
      const bobFetch = new RecordingFetch();
      const a = await device(proxy, alice.token, { fetch: aliceFetch.fetch });
      const b = await device(proxy, bob.token, { fetch: bobFetch.fetch });
      assert.equal(a.client.transport, 'stream');
      assert.equal(b.client.transport, 'stream');
      const [aliceSid] = aliceFetch.sids;
      const [bobSid] = bobFetch.sids;
      assert.ok(aliceSid && bobSid, 'each opened a stream session');

      // Switched back: the stream session is ended (DELETE, the token in a header), not left to its heartbeat deadline.
      const switched = a.client.once('transport', (change) => change.transport === 'websocket');
      proxy.refuseUpgrades(false);
      await switched;
      const ended = await aliceFetch.deleted(aliceSid);
      assert.equal(ended.status, 204);
      assert.equal(ended.authorization, `Bearer ${alice.token}`);
      assert.ok(!ended.url.includes(alice.token), 'the token is never in a URL');
      assert.equal(await postTo(aliceSid, alice.token), 404, 'the server has no such session any more');

      // Closed by the app (a logout): likewise. Bob's client may have switched meanwhile; either way his stream session ends.
      await b.client.close();
      assert.equal((await bobFetch.deleted(bobSid)).status, 204);
      assert.equal(await postTo(bobSid, bob.token), 404);
    });

    /** The status of a ping POSTed to stream session `sid` straight to the server: 404 once the session is gone. */
    async function postTo(sid: string, token: string): Promise<number> {
      const response = await fetch(`${server.url}/v1/stream/${encodeURIComponent(sid)}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: '[{"type":"ping","id":"probe"}]',
      });
      await response.text();
      return response.status;
    }

    it('ends on long polls behind a proxy that buffers responses, and chats', { timeout: 60_000 }, async () => {
      const proxy = await line({ bufferStreams: true });
      const alice = await login('alice');
      const bob = await login('bob');
      const a = await device(proxy, alice.token);
      const b = await device(proxy, bob.token);
      assert.equal(a.client.transport, 'poll');
      assert.equal(b.client.transport, 'poll');
      const thread = await a.client.openDirect(bob.username);
      for (let i = 0; i < 4; i++) await a.client.send(thread.id, { text: `a${i}` });
      for (let i = 0; i < 4; i++) await b.client.send(thread.id, { text: `b${i}` });
      await a.untilSeqs(thread.id, 8);
      await b.untilSeqs(thread.id, 8);
      a.assertOnce(thread.id, 8);
      b.assertOnce(thread.id, 8);
      assert.deepEqual(b.texts(thread.id), ['a0', 'a1', 'a2', 'a3', 'b0', 'b1', 'b2', 'b3']);
    });

    it('resumes a stream the proxy cuts mid-conversation: no reconnect, nothing lost, nothing twice', { timeout: 60_000 }, async () => {
      const proxy = await line();
      const alice = await login('alice');
      const bob = await login('bob');
      const a = await device(proxy, alice.token);
      const b = await device(proxy, bob.token);
      const thread = await a.client.openDirect(bob.username);
      // One at a time: the frames in flight at the cut stay well under stream.resume_frames (16), so it can resume.
      const sending = (async () => {
        for (let i = 0; i < 40; i++) await a.client.send(thread.id, { text: `m${i}` });
      })();
      await b.untilSeqs(thread.id, 5);
      const offlineBefore = b.states.filter((state) => state === 'offline').length;
      assert.ok(proxy.cutStreams() >= 1, 'a stream was cut');
      await sending;
      await b.untilSeqs(thread.id, 40);
      b.assertOnce(thread.id, 40);
      assert.equal(b.states.filter((state) => state === 'offline').length, offlineBefore, `the stream resumed without a new session (states: ${b.states.join(', ')})`);
      assert.equal(b.client.transport, 'stream');
    });

    it('reconnects and catches up when the frames after a cut are no longer kept (resume buffer overflowed): every message once', { timeout: 60_000 }, async () => {
      const aliceLine = await line();
      const bobLine = await line();
      const alice = await login('alice');
      const bob = await login('bob');
      const a = await device(aliceLine, alice.token);
      // Long enough a silence that the stalled stream is not given up before it is cut.
      const b = await device(bobLine, bob.token, { heartbeatReplyTimeoutMs: 20_000 });
      const thread = await a.client.openDirect(bob.username);
      await a.client.send(thread.id, { text: 'before' });
      await b.untilSeqs(thread.id, 1);

      assert.ok(bobLine.stallStreams() >= 1, 'bob’s stream stalled');
      // Far more frames than stream.resume_frames (16) go down the stalled stream.
      for (let i = 0; i < 40; i++) await a.client.send(thread.id, { text: `while stalled ${i}` });
      const reconnected = b.client.once('state', (change) => change.state === 'offline');
      bobLine.cutStreams();
      assert.equal((await reconnected).reason, 'connection_lost', 'the resume was refused: a new session');
      await b.untilSeqs(thread.id, 41);
      b.assertOnce(thread.id, 41);
      assert.equal(b.client.transport, 'stream');
    });
  });
}

/** The SDK's fetch, recording the stream sessions it opened and the DELETEs that ended them (with the server's answer). */
class RecordingFetch {
  readonly sids: string[] = [];
  private readonly deletes: Array<{ readonly url: string; readonly status: number; readonly authorization: string | undefined }> = [];
  private readonly watchers = new Set<() => void>();

  readonly fetch = async (input: string, init: RequestInit): Promise<Response> => {
    const response = await globalThis.fetch(input, init);
    const sid = response.headers.get('chatd-stream');
    if (init.method === 'POST' && sid && !this.sids.includes(sid)) this.sids.push(sid);
    if (init.method === 'DELETE') {
      this.deletes.push({ url: input, status: response.status, authorization: (init.headers as Record<string, string> | undefined)?.Authorization });
      for (const watch of [...this.watchers]) watch();
    }
    return response;
  };

  /** Resolves once the SDK's DELETE of session `sid` was answered. */
  deleted(sid: string): Promise<{ readonly url: string; readonly status: number; readonly authorization: string | undefined }> {
    return new Promise((resolve) => {
      const watch = (): void => {
        const found = this.deletes.find((entry) => entry.url.endsWith(`/v1/stream/${encodeURIComponent(sid)}`));
        if (!found) return;
        this.watchers.delete(watch);
        resolve(found);
      };
      this.watchers.add(watch);
      watch();
    });
  }
}

/** What a client emitted, with its transports and waits on messages by seq. */
class Recorded extends ClientEvents {
  readonly transports: TransportKind[] = [];

  constructor(client: ChatClient) {
    super(client);
    client.on('transport', (change) => this.record(this.transports, change.transport));
  }

  /** Once the thread's messages reach `seq`. */
  untilSeqs(threadId: number, seq: number): Promise<void> {
    return this.until(() => (this.seqs(threadId).includes(seq) ? true : undefined), `seq ${seq} in thread ${threadId}`).then(() => undefined);
  }

  seqs(threadId: number): number[] {
    return this.messages.filter((m) => m.thread_id === threadId).map((m) => m.seq);
  }

  texts(threadId: number): string[] {
    return this.messages.filter((m) => m.thread_id === threadId).map((m) => (m.body as { text: string }).text);
  }

  /** Each (thread, seq) given once, in order, from `first` to `last` with none missing. */
  assertOnce(threadId: number, last?: number, first = 1): void {
    const seqs = this.seqs(threadId);
    const end = last ?? seqs[seqs.length - 1] ?? 0;
    assert.deepEqual(seqs, Array.from({ length: end - first + 1 }, (_, i) => first + i));
  }
}
