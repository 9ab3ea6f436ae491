import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { signUp } from '../helpers/http.js';
import { type ServerProcess, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { type Transport, transports } from '../helpers/transports.js';
import { type Connected, type TestSocket, connectAuthenticated } from '../helpers/ws.js';

/**
 * A device following its threads live gets no inbox rows; what it got live and
 * has not acknowledged is written to its inbox when it stops being live (its
 * connection closes, a newer connection of it opens, or the server dies and
 * starts again). Whatever the path, the contract of protocol.md holds: until a
 * device acks a message, it comes again from the inbox at every connect.
 */

const CONFIG = `
[accounts]
registration = "open"
[rate_limit]
login_per_address = 100000
`;

async function serve(data: string, dir: string, transport: Transport): Promise<ServerProcess> {
  return startServer(['--data', data, '--transport', transport, '--config', writeConfig(dir, CONFIG)]);
}

/** Inbox rows of a device, read from the server's database file while it runs (WAL: readers do not block it). */
function inboxRows(data: string, deviceId: number): number {
  const db = new Database(join(data, 'chatd.db'), { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM inbox WHERE device_id = ?').get(deviceId) as { n: number }).n;
  } finally {
    db.close();
  }
}

const texts = (frames: any[]): unknown[] => frames.map((frame) => frame.message.body.text);

async function send(socket: TestSocket, threadId: number, text: string): Promise<any> {
  return socket.expect({ type: 'send', thread_id: threadId, client_msg_id: `c-${text}`, body: { text } }, 'ack');
}

async function receive(socket: TestSocket, count: number): Promise<string[]> {
  const got: string[] = [];
  while (got.length < count) got.push((await socket.nextEvent('message')).message.body.text);
  return got;
}

for (const transport of transports('inbox of live devices')) {
  describe(`inbox of live devices (${transport})`, () => {
    const servers: ServerProcess[] = [];
    after(() => Promise.all(servers.map((server) => server.stop())));
    let names = 0;

    async function pair(server: ServerProcess): Promise<{ alice: Connected; bobToken: string; bob: Connected; thread: number }> {
      const n = ++names;
      const a = await signUp(server.url, `alice${n}`, 'correct horse', 'laptop');
      const b = await signUp(server.url, `bob${n}`, 'correct horse', 'phone');
      const alice = await connectAuthenticated(server.wsUrl, a.token);
      const bob = await connectAuthenticated(server.wsUrl, b.token);
      const thread = (await alice.socket.expect({ type: 'direct_open', user_id: b.userId }, 'thread')).thread.id;
      return { alice, bobToken: b.token, bob, thread };
    }

    it('no rows while live; at the next connect the inbox has what came live and was not acked', async () => {
      const dir = tempDir();
      const data = join(dir, 'data');
      const server = await serve(data, dir, transport);
      servers.push(server);
      const { alice, bobToken, bob, thread } = await pair(server);
      const device = bob.welcome.device_id as number;
      for (const text of ['m1', 'm2', 'm3']) await send(alice.socket, thread, text);
      assert.deepEqual(await receive(bob.socket, 3), ['m1', 'm2', 'm3']);
      assert.equal(inboxRows(data, device), 0, 'a live device gets its messages live, without inbox rows');
      await bob.socket.expect({ type: 'delivered', thread_id: thread, seq: 1 }, 'delivered');
      bob.socket.close();
      await bob.socket.closed;
      // Reconnect at once: the inbox waits for the rows the closed connection left.
      const again = await connectAuthenticated(server.wsUrl, bobToken);
      assert.deepEqual(texts(again.inbox), ['m2', 'm3'], 'acked m1 is gone; m2 and m3 come again');
      // Offline meanwhile, live again now: m4 comes live, and the unacked ones still come at the next connect.
      await send(alice.socket, thread, 'm4');
      assert.deepEqual(await receive(again.socket, 1), ['m4']);
      again.socket.close();
      await again.socket.closed;
      const third = await connectAuthenticated(server.wsUrl, bobToken);
      assert.deepEqual(texts(third.inbox), ['m2', 'm3', 'm4']);
      await third.socket.expect({ type: 'delivered', thread_id: thread, seq: 4 }, 'delivered');
      third.socket.close();
      await third.socket.closed;
      assert.equal((await connectAuthenticated(server.wsUrl, bobToken)).inbox.length, 0, 'all acked: an empty inbox');
      alice.socket.close();
    });

    it('a new connection while the old one lingers gets what the old one got live and did not ack', async () => {
      const dir = tempDir();
      const data = join(dir, 'data');
      const server = await serve(data, dir, transport);
      servers.push(server);
      const { alice, bobToken, bob, thread } = await pair(server);
      await send(alice.socket, thread, 'to the old socket');
      assert.deepEqual(await receive(bob.socket, 1), ['to the old socket']);
      // The old socket stays open, the way a dead mobile connection does until its heartbeat deadline.
      const fresh = await connectAuthenticated(server.wsUrl, bobToken);
      assert.deepEqual(texts(fresh.inbox), ['to the old socket']);
      // Both connections follow the thread now.
      await send(alice.socket, thread, 'to both');
      assert.deepEqual(await receive(fresh.socket, 1), ['to both']);
      assert.deepEqual(await receive(bob.socket, 1), ['to both']);
      // The old one closing late changes nothing for the new one, which stays live.
      bob.socket.close();
      await bob.socket.closed;
      await send(alice.socket, thread, 'after the old one closed');
      assert.deepEqual(await receive(fresh.socket, 1), ['after the old one closed']);
      fresh.socket.close();
      await fresh.socket.closed;
      const last = await connectAuthenticated(server.wsUrl, bobToken);
      assert.deepEqual(texts(last.inbox), ['to the old socket', 'to both', 'after the old one closed']);
      alice.socket.close();
    });

    it('kill -9 while a device is live: after the restart its unacked messages are in its inbox', async () => {
      const dir = tempDir();
      const data = join(dir, 'data');
      const server = await serve(data, dir, transport);
      const { alice, bobToken, bob, thread } = await pair(server);
      const device = bob.welcome.device_id as number;
      for (const text of ['k1', 'k2']) await send(alice.socket, thread, text);
      assert.deepEqual(await receive(bob.socket, 2), ['k1', 'k2']);
      assert.equal(inboxRows(data, device), 0);
      await server.stop('SIGKILL');
      const restarted = await serve(data, dir, transport);
      servers.push(restarted);
      assert.ok(
        restarted.logs.some((line) => String(line.msg).startsWith('inbox entries written for the devices still connected')),
        'the restart says it recovered the live devices',
      );
      const again = await connectAuthenticated(restarted.wsUrl, bobToken);
      assert.deepEqual(texts(again.inbox), ['k1', 'k2']);
      again.socket.close();
    });
  });
}
