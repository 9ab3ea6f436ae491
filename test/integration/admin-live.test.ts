import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { logIn, request } from '../helpers/http.js';
import { type ServerProcess, runCli, startServer } from '../helpers/processes.js';
import { type Connected, connectAuthenticated } from '../helpers/ws.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';

/**
 * Admin commands run in their own process against the server's database; the
 * running server must close the connections they revoke (4006) within two
 * seconds and store nothing more from them.
 */

interface Person {
  readonly id: number;
  readonly name: string;
  readonly password: string;
  readonly devices: Array<{ readonly token: string; readonly deviceId: number; readonly live: Connected }>;
}

function setUp(configToml: string): {
  server: () => ServerProcess;
  chatd: (command: string[], input?: string) => ReturnType<typeof runCli>;
  person: (prefix: string, devices: number) => Promise<Person>;
  direct: (from: Connected, to: Person) => Promise<number>;
} {
  let server: ServerProcess;
  let args: string[];
  let names = 0;
  before(async () => {
    const dir = tempDir();
    args = ['--data', join(dir, 'data'), '--config', writeConfig(dir, configToml)];
    server = await startServer(args);
  });
  after(() => server.stop());
  const chatd = (command: string[], input?: string) => runCli([...command, ...args], input === undefined ? {} : { input });
  return {
    server: () => server,
    chatd,
    async person(prefix, count) {
      const name = `${prefix}${++names}`;
      const password = `${name}-password`;
      const added = await chatd(['user', 'add', name], `${password}\n`);
      assert.equal(added.code, 0, added.stderr);
      const devices = [];
      for (let i = 0; i < count; i++) {
        const login = await logIn(server.url, name, password, `device-${i}`);
        devices.push({ token: login.token, deviceId: login.deviceId, live: await connectAuthenticated(server.wsUrl, login.token) });
      }
      return { id: Number(/id (\d+)/.exec(added.stdout)?.[1]), name, password, devices };
    },
    async direct(from, to) {
      return (await from.socket.expect({ type: 'direct_open', user_id: to.id }, 'thread')).thread.id;
    },
  };
}

/** Bob's history of the thread, read after a message of his own so that every earlier write has committed. */
async function textsIn(reader: Connected, threadId: number, marker: string): Promise<string[]> {
  await reader.socket.expect({ type: 'send', thread_id: threadId, client_msg_id: marker, body: { text: marker } }, 'ack');
  const page = await reader.socket.expect({ type: 'history', thread_id: threadId, limit: 100 }, 'messages');
  return page.messages.map((message: any) => message.body.text);
}

/** The socket's close, or a failure once `deadline` (performance.now() time) passes without one. */
async function closedBy(live: Connected, deadline: number): Promise<{ code: number; reason: string; at: number }> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('the socket was still open two seconds after the command')), Math.max(0, deadline - performance.now()));
  });
  try {
    const closed = await Promise.race([live.socket.closed, late]);
    return { ...closed, at: performance.now() };
  } finally {
    clearTimeout(timer);
  }
}

describe('admin commands from the CLI close the connections they revoke on the running server', () => {
  // The default revocation_poll_ms (250): what an operator gets.
  const { server, chatd, person, direct } = setUp('');
  const cases: Array<{ what: string; command: (alice: Person) => [string[], string?]; closes: 'one' | 'all'; reason: RegExp }> = [
    { what: 'device revoke', command: (alice) => [['device', 'revoke', String(alice.devices[1]?.deviceId)]], closes: 'one', reason: /device was logged out/ },
    { what: 'user disable', command: (alice) => [['user', 'disable', alice.name]], closes: 'all', reason: /account was disabled/ },
    { what: 'user delete', command: (alice) => [['user', 'delete', alice.name, '--yes']], closes: 'all', reason: /account was deleted/ },
    {
      what: 'user passwd --revoke-devices',
      command: (alice) => [['user', 'passwd', alice.name, '--revoke-devices'], 'a-new-password\n'],
      closes: 'all',
      // A send that reaches the storing transaction first is refused as any revoked device's is.
      reason: /password was changed|device was logged out/,
    },
  ];

  for (const { what, command, closes, reason } of cases) {
    const title =
      closes === 'one'
        ? `${what}: the quiet device's socket closes with 4006 within two seconds; the user's other device and other users carry on`
        : `${what}: every socket of the user closes with 4006 within two seconds, a message sent meanwhile is not stored, other users carry on`;
    it(title, async (t) => {
      const alice = await person('alice', 2);
      const bob = await person('bob', 1);
      const [phone, laptop] = alice.devices as [Person['devices'][0], Person['devices'][0]];
      const bobLive = bob.devices[0]?.live as Connected;
      const thread = await direct(phone.live, bob);
      // The laptop stays quiet: only the server's look at the database can close it. With every device
      // revoked, the phone sends at once, before the server may have looked.
      const revoked = closes === 'one' ? [laptop] : [phone, laptop];
      const senders = closes === 'one' ? [] : [phone];
      const spared = closes === 'one' ? [phone] : [];

      const [args, input] = command(alice);
      const started = performance.now();
      const ran = await chatd(args, input);
      const done = performance.now();
      assert.equal(ran.code, 0, ran.stderr);
      for (const device of senders) {
        device.live.socket.send({ type: 'send', id: 'late', thread_id: thread, client_msg_id: 'late', body: { text: 'after the revocation' } });
      }
      for (const device of revoked) {
        const closed = await closedBy(device.live, done + 2000);
        t.diagnostic(
          `${device === laptop ? 'quiet' : 'sending'} device closed ${Math.round(closed.at - done)} ms after the CLI exited, ${Math.round(closed.at - started)} ms after it started`,
        );
        assert.equal(closed.code, 4006);
        assert.match(closed.reason, reason);
      }
      for (const device of senders) {
        // Refused by the storing transaction, or dropped with the connection the server closed first.
        const late = device.live.socket.arrivals.find((frame: any) => frame.id === 'late');
        if (late) assert.match(late.error?.code, /^(unauthorized|account_disabled)$/, 'a reply to the late send can only be a refusal');
      }

      assert.ok(!(await textsIn(bobLive, thread, `bob-after-${what}`)).includes('after the revocation'), 'nothing sent after the revocation is stored');
      assert.equal((await bobLive.socket.request({ type: 'ping' })).type, 'pong', "another user's connection stays up");
      for (const device of spared) {
        await device.live.socket.expect({ type: 'send', thread_id: thread, client_msg_id: 'still-here', body: { text: 'still here' } }, 'ack');
      }
      // The token is dead for good: connecting again with it fails (4002).
      const again = await connectAuthenticated(server().wsUrl, (revoked[0] as Person['devices'][0]).token).then(
        () => 'welcomed',
        (error: Error) => error.message,
      );
      assert.match(again, /auth failed/);
      for (const device of spared) device.live.socket.close();
      bobLive.socket.close();
    });
  }

  it('a change of password over HTTP that signs out the other devices closes their sockets at once', async () => {
    const alice = await person('alice', 2);
    const [phone, laptop] = alice.devices as [Person['devices'][0], Person['devices'][0]];
    const changed = await request(`${server().url}/v1/me/password`, {
      body: { current_password: alice.password, new_password: 'another-password' },
      token: phone.token,
    });
    assert.equal(changed.status, 200, JSON.stringify(changed.body));
    const closed = await closedBy(laptop.live, performance.now() + 2000);
    assert.equal(closed.code, 4006);
    assert.match(closed.reason, /password was changed/);
    assert.equal((await phone.live.socket.request({ type: 'ping' })).type, 'pong');
    phone.live.socket.close();
  });
});

describe('a message in flight when another process revokes its device', () => {
  // The server does not look for other processes' changes during this test: only the storing transaction's check stands.
  const { chatd, person, direct } = setUp('[storage]\nrevocation_poll_ms = 60000\n');

  it('is refused by the transaction that would store it (unauthorized), and the connection closes with 4006', async () => {
    const alice = await person('alice', 1);
    const bob = await person('bob', 1);
    const live = alice.devices[0]?.live as Connected;
    const bobLive = bob.devices[0]?.live as Connected;
    const thread = await direct(live, bob);
    await live.socket.expect({ type: 'send', thread_id: thread, client_msg_id: 'before', body: { text: 'before' } }, 'ack');
    assert.equal((await chatd(['device', 'revoke', String(alice.devices[0]?.deviceId)])).code, 0);
    const refused = await live.socket.request({ type: 'send', thread_id: thread, client_msg_id: 'after', body: { text: 'after' } });
    assert.equal(refused.type, 'error');
    assert.equal(refused.error.code, 'unauthorized');
    assert.equal((await live.socket.closed).code, 4006);
    const texts = await textsIn(bobLive, thread, 'bob');
    assert.deepEqual(texts, ['before', 'bob']);
    bobLive.socket.close();
  });
});
