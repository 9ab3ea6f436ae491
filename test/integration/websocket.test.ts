import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request, signUp } from '../helpers/http.js';
import { type ServerProcess, runCli, startServer } from '../helpers/processes.js';
import { TestSocket, connectAuthenticated } from '../helpers/ws.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { transports } from '../helpers/transports.js';

for (const transport of transports('WebSocket /v1/ws')) {
  describe(`WebSocket /v1/ws on the ${transport} transport`, () => {
    let server: ServerProcess;
    let args: string[];

    before(async () => {
      const dir = tempDir();
      args = ['--data', `${dir}/data`, '--config', writeConfig(dir, `
[accounts]
registration = "open"
[websocket]
auth_timeout_ms = 400
heartbeat_interval_ms = 300
heartbeat_timeout_ms = 900
`)];
      server = await startServer([...args, '--transport', transport]);
    });
    after(() => server.stop());

    it('answers the auth frame with a welcome: protocol, epoch, heartbeat timing, limits, who I am', async () => {
      const alice = await signUp(server.url, 'alice');
      const { socket, welcome } = await connectAuthenticated(server.wsUrl, alice.token);
      assert.equal(welcome.id, 'auth');
      assert.equal(welcome.protocol, 4);
      assert.match(welcome.epoch, /^[0-9a-f]{32}$/);
      assert.equal(welcome.heartbeat_interval_ms, 300);
      assert.equal(welcome.heartbeat_timeout_ms, 900);
      assert.equal(welcome.limits.max_frame_bytes, 65536);
      assert.equal(welcome.limits.user_sends_per_second, 30);
      assert.equal(welcome.limits.max_connections_per_device, 10);
      assert.deepEqual(welcome.user, { id: alice.userId, username: 'alice', display_name: 'alice' });
      assert.equal(welcome.device_id, alice.deviceId);
      const stats = await runCli(['stats', '--json', ...args]);
      assert.equal(JSON.parse(stats.stdout).epoch, welcome.epoch, 'the epoch is the database’s');
      socket.close();
    });

    it('answers each ping with a pong carrying its id', async () => {
      const { token } = await signUp(server.url, 'bob');
      const { socket } = await connectAuthenticated(server.wsUrl, token);
      assert.deepEqual(await socket.call({ type: 'ping', id: 'p1' }), { type: 'pong', id: 'p1' });
      assert.deepEqual(await socket.call({ type: 'ping', id: 'p2' }), { type: 'pong', id: 'p2' });
      socket.close();
    });

    it('accepts no other frame before auth, and still accepts the auth after', async () => {
      const { token } = await signUp(server.url, 'carol');
      const socket = await TestSocket.connect(server.wsUrl);
      const refused = await socket.call({ type: 'ping', id: 'early' });
      assert.equal(refused.type, 'error');
      assert.equal(refused.id, 'early');
      assert.equal(refused.error.code, 'unauthorized');
      assert.equal((await socket.call({ type: 'auth', id: 'a', token })).type, 'welcome');
      socket.close();
    });

    it('refuses a bad token with an error frame, then closes with 4002', async () => {
      const socket = await TestSocket.connect(server.wsUrl);
      const reply = await socket.call({ type: 'auth', id: 'a', token: 'not-a-token' });
      assert.equal(reply.error.code, 'unauthorized');
      assert.equal((await socket.closed).code, 4002);
    });

    it('closes a connection that does not authenticate in time with 4001', async () => {
      const socket = await TestSocket.connect(server.wsUrl);
      const closed = await socket.closed;
      assert.equal(closed.code, 4001);
      assert.match(closed.reason, /not authenticated within 400 ms/);
    });

    it('closes an authenticated connection that falls silent past the heartbeat timeout with 4003', async () => {
      const { token } = await signUp(server.url, 'dave');
      const { socket } = await connectAuthenticated(server.wsUrl, token);
      assert.equal((await socket.closed).code, 4003);
    });

    it('answers a bad frame with an error frame and stays usable', async () => {
      const { token } = await signUp(server.url, 'erin');
      const { socket } = await connectAuthenticated(server.wsUrl, token);
      const garbage = await socket.call('{not json');
      assert.deepEqual([garbage.type, garbage.id, garbage.error.code], ['error', null, 'invalid_frame']);
      const unknown = await socket.call({ type: 'shout', id: 'u1' });
      assert.deepEqual([unknown.id, unknown.error.code, unknown.error.retryable], ['u1', 'unknown_type', false]);
      socket.ws.send(Buffer.from([1, 2, 3]), { binary: true });
      assert.equal((await socket.next()).error.code, 'invalid_frame');
      const again = await socket.call({ type: 'auth', id: 'a2', token });
      assert.equal(again.error.code, 'bad_request');
      assert.deepEqual(await socket.call({ type: 'ping', id: 'still' }), { type: 'pong', id: 'still' });
      socket.close();
    });

    it('closes the live connections of a device when it is revoked over HTTP (4006), and only those', async () => {
      const phone = await signUp(server.url, 'frank', 'correct horse', 'phone');
      const laptop = await request(`${server.url}/v1/login`, { body: { username: 'frank', password: 'correct horse', device_name: 'laptop', platform: 'web' } });
      const onPhone = await connectAuthenticated(server.wsUrl, phone.token);
      const onLaptop = await connectAuthenticated(server.wsUrl, laptop.body.token);
      await request(`${server.url}/v1/devices/${laptop.body.device.id}`, { method: 'DELETE', token: phone.token });
      assert.equal((await onLaptop.socket.closed).code, 4006);
      assert.deepEqual(await onPhone.socket.call({ type: 'ping', id: 'x' }), { type: 'pong', id: 'x' });
      await request(`${server.url}/v1/logout`, { method: 'POST', token: phone.token });
      assert.equal((await onPhone.socket.closed).code, 4006, 'logging out closes the socket too');
    });

    it('refuses a socket on any other path', async () => {
      const socket = new TestSocket(new (await import('ws')).default(`ws://127.0.0.1:${server.port}/v1/other`));
      await assert.rejects(socket.opened);
    });
  });
}
