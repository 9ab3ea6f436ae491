import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { ChatClient } from '../../src/client/node.js';
import { signUp } from '../helpers/http.js';
import { type ServerProcess, startServer } from '../helpers/processes.js';
import { TestSocket, connectAuthenticated } from '../helpers/ws.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { transports } from '../helpers/transports.js';

/** Connects from a given local address (any of 127.0.0.0/8 reaches the server), without authenticating. */
async function connectFrom(url: string, localAddress = '127.0.0.1'): Promise<TestSocket> {
  const socket = new TestSocket(new WebSocket(url, { localAddress }));
  await socket.opened;
  return socket;
}

/** Asserts that the connection was refused by a limit: a rate_limited error with retry_after_ms, then close 4004. */
async function assertRefused(socket: TestSocket, idOfAuth: string | null = null): Promise<number> {
  const { code } = await socket.closed;
  const refusal = socket.arrivals.at(-1);
  assert.equal(refusal?.type, 'error', JSON.stringify(socket.arrivals));
  assert.equal(refusal.id, idOfAuth);
  assert.equal(refusal.error.code, 'rate_limited', JSON.stringify(refusal));
  assert.ok(refusal.error.retry_after_ms >= 1000, JSON.stringify(refusal));
  assert.equal(code, 4004);
  return refusal.error.retry_after_ms as number;
}

/** The per-minute rates under [limits], lifted: these tests reconnect far more often than a person would. */
const RATES_LIFTED = `connections_per_address_per_minute = 100000
auth_per_address_per_minute = 100000
auth_per_user_per_minute = 100000
auth_per_device_per_minute = 100000`;

async function startWith(transport: string, toml: string): Promise<ServerProcess> {
  const dir = tempDir();
  return startServer(['--data', `${dir}/data`, '--transport', transport, '--config', writeConfig(dir, `
[accounts]
registration = "open"
[rate_limit]
login_per_address = 100000
${toml}`)]);
}

for (const transport of transports('limits across connections')) {
  describe(`limits across connections on the ${transport} transport`, () => {
    describe('flooding and reconnecting', () => {
      let server: ServerProcess;
      before(async () => {
        server = await startWith(transport, `
[websocket]
frames_per_second = 20
max_refused_frames = 10
[limits]
pause_after_flood_seconds = 1
user_sends_per_second = 10
${RATES_LIFTED}
`);
      });
      after(() => server.stop());

      it('after a 4004 the device and its user are refused until the pause is over, with the time to wait; then they are let in', async () => {
        const alice = await signUp(server.url, 'alice');
        const { socket } = await connectAuthenticated(server.wsUrl, alice.token);
        for (let i = 0; i < 200; i++) socket.send({ type: 'ping', id: `p${i}` });
        assert.equal((await socket.closed).code, 4004);
        const last = socket.arrivals.at(-1);
        assert.equal(last.error.code, 'rate_limited', 'the last frame before 4004 says how long to pause');
        assert.equal(last.error.retry_after_ms, 1000);

        const early = await connectFrom(server.wsUrl);
        early.send({ type: 'auth', id: 'auth', token: alice.token });
        const wait = await assertRefused(early, 'auth');
        assert.equal(wait, 1000);

        await new Promise((resolve) => setTimeout(resolve, wait));
        const { socket: later } = await connectAuthenticated(server.wsUrl, alice.token);
        assert.equal((await later.request({ type: 'ping' })).type, 'pong');
        later.close();
      });

      it('the client SDK, refused during a pause, waits as long as the server asked before connecting again', async () => {
        const frank = await signUp(server.url, 'frank');
        const { socket } = await connectAuthenticated(server.wsUrl, frank.token);
        for (let i = 0; i < 200; i++) socket.send({ type: 'ping', id: `p${i}` });
        assert.equal((await socket.closed).code, 4004);
        const client = new ChatClient({ server: server.url, token: frank.token, reconnect: { initialDelayMs: 50, maxDelayMs: 100 } });
        const offline = client.once('state', (change) => change.state === 'offline');
        await client.start();
        const change = await offline;
        assert.equal(change.reason, 'rate_limited');
        assert.ok((change.retry_in_ms ?? 0) >= 1000, `retry in ${change.retry_in_ms} ms`);
        await client.whenOnline();
        await client.close();
      });

      it('a client that reconnects after every 4004 stores no more than its user send budget, and another user sends unhindered meanwhile', async () => {
        const mallory = await signUp(server.url, 'mallory');
        const bob = await signUp(server.url, 'bob');
        const carol = await signUp(server.url, 'carol');
        const setup = await connectAuthenticated(server.wsUrl, mallory.token);
        const malloryThread = (await setup.socket.expect({ type: 'direct_open', user_id: carol.userId }, 'thread')).thread.id;
        setup.socket.close();
        await setup.socket.closed;
        const b = await connectAuthenticated(server.wsUrl, bob.token);
        const bobThread = (await b.socket.expect({ type: 'direct_open', user_id: carol.userId }, 'thread')).thread.id;

        const started = Date.now();
        const durationMs = 2_500;
        let connections = 0;
        let refusedConnections = 0;
        let n = 0;
        const attack = async (): Promise<void> => {
          while (Date.now() - started < durationMs) {
            const socket = await connectFrom(server.wsUrl);
            connections++;
            socket.send({ type: 'auth', id: 'auth', token: mallory.token });
            // Everything at once, as fast as the socket takes it, without waiting for the welcome.
            for (let i = 0; i < 100; i++) socket.send({ type: 'send', id: `s${++n}`, thread_id: malloryThread, client_msg_id: `m${n}`, body: { text: 'spam' } });
            await socket.closed;
            if (socket.arrivals[0]?.type === 'error') refusedConnections++;
          }
        };
        const decent = async (): Promise<string[]> => {
          const failures: string[] = [];
          for (let i = 0; Date.now() - started < durationMs; i++) {
            const reply = await b.socket.request({ type: 'send', thread_id: bobThread, client_msg_id: `b${i}`, body: { text: `hello ${i}` } });
            if (reply.type !== 'ack') failures.push(JSON.stringify(reply));
            await new Promise((resolve) => setTimeout(resolve, 150));
          }
          return failures;
        };
        const [, bobFailures] = await Promise.all([attack(), decent()]);
        const seconds = (Date.now() - started) / 1000;
        // Counted in the thread, not by acks: a connection cut by 4004 does not get the acks of what it stored last.
        const c = await connectAuthenticated(server.wsUrl, carol.token);
        const latest = await c.socket.expect({ type: 'history', thread_id: malloryThread, limit: 1 }, 'messages');
        const stored = latest.messages[0]?.seq ?? 0;
        c.socket.close();
        // The documented budget: a burst of two seconds' worth, then user_sends_per_second.
        const budget = 2 * 10 + 10 * seconds;
        assert.ok(stored <= budget, `stored ${stored} messages in ${seconds} s over ${connections} connections; the budget is ${budget}`);
        assert.ok(refusedConnections > 0, `reconnecting during the pause was refused (${connections} connections)`);
        assert.deepEqual(bobFailures, [], "bob's sends were all acked");
        b.socket.close();
      });
    });

    describe('connections per address, device and user', () => {
      let server: ServerProcess;
      before(async () => {
        server = await startWith(transport, `
[websocket]
auth_timeout_ms = 5000
[limits]
max_unauthenticated = 3
max_unauthenticated_per_address = 2
max_connections_per_device = 2
${RATES_LIFTED}
`);
      });
      after(() => server.stop());

      it('refuses a connection past the unauthenticated cap of its address, then of the server; authenticating frees a place', async () => {
        const dave = await signUp(server.url, 'dave');
        const waiting = [await connectFrom(server.wsUrl), await connectFrom(server.wsUrl)];
        await assertRefused(await connectFrom(server.wsUrl));
        const other = await connectFrom(server.wsUrl, '127.0.0.2');
        await assertRefused(await connectFrom(server.wsUrl, '127.0.0.3'));

        const first = waiting[0] as TestSocket;
        assert.equal((await first.call({ type: 'auth', id: 'auth', token: dave.token })).type, 'welcome');
        const admitted = await connectFrom(server.wsUrl);
        assert.equal((await admitted.call({ type: 'auth', id: 'auth', token: dave.token })).type, 'welcome');
        for (const socket of [first, admitted, other, waiting[1] as TestSocket]) {
          socket.close();
          await socket.closed;
        }
      });

      it('refuses a device a connection past its live maximum until one of them closes', async () => {
        const erin = await signUp(server.url, 'erin');
        const first = await connectAuthenticated(server.wsUrl, erin.token);
        const second = await connectAuthenticated(server.wsUrl, erin.token);
        const third = await connectFrom(server.wsUrl);
        third.send({ type: 'auth', id: 'auth', token: erin.token });
        await assertRefused(third, 'auth');
        first.socket.close();
        await first.socket.closed;
        const fourth = await connectAuthenticated(server.wsUrl, erin.token);
        fourth.socket.close();
        second.socket.close();
      });
    });

    describe('behind a trusted proxy', () => {
      let server: ServerProcess;
      before(async () => {
        server = await startWith(transport, `
[http]
trust_proxy = true
[limits]
max_unauthenticated_per_address = 1
`);
      });
      after(() => server.stop());

      it('counts each forwarded client address apart, by the last X-Forwarded-For hop', async () => {
        const from = async (forwardedFor: string): Promise<TestSocket> => {
          const socket = new TestSocket(new WebSocket(server.wsUrl, { headers: { 'x-forwarded-for': forwardedFor } }));
          await socket.opened;
          return socket;
        };
        const first = await from('203.0.113.1');
        const second = await from('spoofed, 203.0.113.2');
        await assertRefused(await from('203.0.113.2'));
        for (const socket of [first, second]) {
          assert.deepEqual(socket.arrivals, [], 'admitted: nothing said before auth');
          socket.close();
        }
      });
    });
  });
}
