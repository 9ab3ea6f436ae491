import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { AccountApi, ChatClient, type MessageJson } from '../../src/client/node.js';
import { CHATD_BIN, type ServerProcess, cleanEnv, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';

const PASSWORD = 'correct horse';

/** A running `chatd chat`: lines are written to its standard input, its output lines are waited for in order. */
class ChatProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly exited: Promise<number | null>;
  private readonly lines: string[] = [];
  private position = 0;
  private stderr = '';
  private waiter: (() => void) | undefined;

  constructor(args: string[], env: Record<string, string>) {
    this.child = spawn(process.execPath, [CHATD_BIN, 'chat', ...args], { env: cleanEnv(env), stdio: 'pipe' });
    this.child.stderr.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      this.lines.push(line);
      this.waiter?.();
    });
    // 'close', not 'exit': by then every line the process wrote has been read.
    this.exited = once(this.child, 'close').then(([code]) => code as number | null);
    void this.exited.then(() => this.waiter?.());
  }

  write(line: string): void {
    this.child.stdin.write(`${line}\n`);
  }

  /** Every output line so far. */
  printed(): readonly string[] {
    return this.lines;
  }

  /** Ends standard input and resolves with the exit code and what went to stderr. */
  async end(): Promise<{ code: number | null; stderr: string }> {
    this.child.stdin.end();
    return { code: await this.exited, stderr: this.stderr };
  }

  /** The next output line (after the last one matched) that matches; fails if the process exits first or it takes too long. */
  async line(pattern: RegExp, timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.lines.findIndex((line, at) => at >= this.position && pattern.test(line));
      if (index >= 0) {
        this.position = index + 1;
        return this.lines[index] as string;
      }
      const left = deadline - Date.now();
      if (this.child.exitCode !== null || left <= 0) {
        const why = this.child.exitCode === null ? `printed no line like ${pattern} in ${timeoutMs} ms` : `exited (${this.child.exitCode}) without printing ${pattern}`;
        throw new Error(`chatd chat ${why}:\n${this.lines.join('\n')}\n${this.stderr}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}

describe('the terminal client, chatd chat', () => {
  const dir = tempDir();
  const env = { XDG_STATE_HOME: join(dir, 'xdg') };
  const aliceState = join(dir, 'alice', 'state.json');
  const running: ChatProcess[] = [];
  let server: ServerProcess;
  let bob: ChatClient;

  const chat = (args: string[]): ChatProcess => {
    const started = new ChatProcess(['--server', server.url, ...args], env);
    running.push(started);
    return started;
  };
  const received = (text: string): Promise<MessageJson> =>
    bob.once('message', (message) => JSON.stringify(message.body) === JSON.stringify({ text }));

  before(async () => {
    const config = writeConfig(dir, '[accounts]\nregistration = "open"\n[rate_limit]\nlogin_per_address = 100000\n');
    server = await startServer(['--data', join(dir, 'data'), '--config', config]);
    const api = new AccountApi(server.url);
    for (const username of ['alice', 'bob']) await api.register({ username, password: PASSWORD });
    ({ client: bob } = await ChatClient.login({ server: server.url, username: 'bob', password: PASSWORD, deviceName: 'test' }));
    await bob.start();
    await bob.whenOnline();
  });
  after(async () => {
    for (const process of running) process.child.kill('SIGKILL');
    await bob.close();
    await server.stop();
  });

  it('logs in with the password from standard input, sends to a direct thread and prints the reply', async () => {
    const alice = chat(['--user', 'alice', '--state', aliceState]);
    alice.write(PASSWORD);
    await alice.line(/^connected as alice \(device \d+\) to http:\/\/127\.0\.0\.1:\d+$/);
    alice.write('no thread yet');
    await alice.line(/^open a thread first: \/dm USER or \/open N$/);
    alice.write('/frobnicate');
    await alice.line(/^unknown command \/frobnicate; commands: /);

    const hello = received('hello bob');
    alice.write('/dm bob');
    await alice.line(/^--- @bob ---$/);
    alice.write('hello bob');
    const message = await hello;
    assert.deepEqual(message.body, { text: 'hello bob' });
    await alice.line(/^\(\d+\) \[@bob\] alice: hello bob$/); // her own message comes back as an event too

    await bob.send(message.thread_id, { text: 'hi alice' });
    await alice.line(/^\(\d+\) \[@bob\] bob: hi alice$/);
    // The open thread is on screen: what arrives in it is read. Another thread keeps its unread count.
    const group = await bob.createGroup('Plans', ['alice']);
    await bob.send(group.id, { text: 'later?' });
    await alice.line(/^\(\d+\) \[Plans\] bob: later\?$/);
    alice.write('/threads');
    await alice.line(/^1\. Plans \(\d+ unread\) - bob: later\?$/);
    await alice.line(/^2\. @bob - bob: hi alice$/);

    assert.deepEqual(await alice.end(), { code: 0, stderr: '' });
    assert.equal(statSync(`${aliceState}.token`).mode & 0o777, 0o600, 'the token file is readable by its owner only');
  });

  it('runs again from the saved login without a password, shows the thread with /open @bob and sends what was typed before the end of input', async () => {
    const alice = chat(['--state', aliceState]);
    const bye = received('bye bob');
    alice.write('/open @bob');
    alice.write('bye bob');
    const ended = alice.end();
    await alice.line(/^connected as alice /);
    await alice.line(/^--- @bob ---$/);
    await alice.line(/^\(\d+\) \[@bob\] alice: hello bob$/);
    await alice.line(/^\(\d+\) \[@bob\] bob: hi alice$/);
    assert.deepEqual((await bye).body, { text: 'bye bob' });
    assert.deepEqual(await ended, { code: 0, stderr: '' });
  });

  it('replies, edits, reacts, deletes and searches by the number beside each message; the other side’s changes arrive as notices; a mention of the reader is marked', { timeout: 60_000 }, async () => {
    const alice = chat(['--state', aliceState]);
    const number = (line: string): number => Number(/^\((\d+)\)/.exec(line)?.[1]);
    alice.write('/help');
    await alice.line(/^ {2}\/edit N TEXT /);
    alice.write('/open @bob');
    await alice.line(/^--- @bob ---$/);
    const hello = number(await alice.line(/^\(\d+\) \[@bob\] alice: hello bob$/));
    const bye = number(await alice.line(/^\(\d+\) \[@bob\] alice: bye bob$/));
    const thread = (await bob.openDirect('alice')).id;
    const aliceId = (await bob.openDirect('alice')).peer?.id as number;

    // bob mentions alice: marked for her.
    await bob.send(thread, { text: '@alice café at nine?' }, { mentions: [aliceId] });
    const question = number(await alice.line(/^\(\d+\) \[@bob\] bob: \*\*@alice\*\* café at nine\?$/));

    // A reply by number: bob gets it with reply_to; alice sees the quote under it.
    const replied = received('sure');
    alice.write(`/reply ${question} sure`);
    const reply = await replied;
    assert.equal(reply.reply_to, (await bob.history(thread)).messages.find((m) => (m.body as any)?.text === '@alice café at nine?')?.id);
    const mine = number(await alice.line(/^\(\d+\) \[@bob\] alice: sure$/));
    await alice.line(new RegExp(`^ {2}↪ reply to ${question}: @alice café at nine\\?$`));

    // An edit of her own message reaches bob; her terminal prints the notice.
    const edited = bob.once('message_changed', (change) => change.messageId === reply.id && change.change.type === 'edit');
    alice.write(`/edit ${mine} sure, see you at nine`);
    await edited;
    await alice.line(new RegExp(`^\\[@bob\\] \\* alice edited message ${mine}: sure, see you at nine$`));
    alice.write(`/edit ${question} not mine`);
    await alice.line(new RegExp(`^error: message ${question} is not yours`));

    // /react toggles: on, then off.
    alice.write(`/react ${question} 👍`);
    await alice.line(new RegExp(`^\\[@bob\\] \\* alice reacted 👍 to message ${question} \\(now 👍 1\\)$`));
    alice.write(`/react ${question} 👍`);
    await alice.line(new RegExp(`^\\[@bob\\] \\* alice removed 👍 from message ${question}$`));
    alice.write(`/react ${question} notanemoji`);
    await alice.line(/^error: .*emoji/);

    // bob's own changes arrive as notices.
    await bob.edit(questionId(await bob.history(thread)), { text: '@alice café at ten?' }, { mentions: [aliceId] });
    await alice.line(new RegExp(`^\\[@bob\\] \\* bob edited message ${question}: \\*\\*@alice\\*\\* café at ten\\?$`));
    await bob.deleteMessage(questionId(await bob.history(thread)), { forEveryone: true });
    await alice.line(new RegExp(`^\\[@bob\\] \\* bob deleted message ${question}$`));

    // Shown again: [deleted], (edited), the reply to a deleted message; the numbers are the same.
    alice.write('/open @bob');
    await alice.line(/^--- @bob ---$/);
    await alice.line(new RegExp(`^\\(${question}\\) \\[@bob\\] bob: \\[deleted\\]$`));
    await alice.line(new RegExp(`^\\(${mine}\\) \\[@bob\\] alice: sure, see you at nine \\(edited\\)$`));
    await alice.line(new RegExp(`^ {2}↪ reply to ${question}: \\[deleted\\]$`));

    // Delete for everyone, and for me only.
    const deleted = bob.once('message_changed', (change) => change.messageId === reply.id && change.change.type === 'delete');
    alice.write(`/delete ${mine}`);
    await deleted;
    await alice.line(new RegExp(`^\\[@bob\\] \\* alice deleted message ${mine}$`));
    alice.write(`/delete ${hello} me`);
    await alice.line(new RegExp(`^\\[@bob\\] \\* message ${hello} deleted for you$`));

    // Search: numbered results with the hit marked; nothing deleted or hidden.
    alice.write('/search bye');
    await alice.line(/^1 result\(s\) for "bye":$/);
    await alice.line(new RegExp(`^\\(${bye}\\) \\[@bob\\] alice \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d: .*\\*\\*bye\\*\\* bob`));
    alice.write('/search hello');
    await alice.line(/^no messages found for "hello"$/);
    alice.write('/search nine');
    await alice.line(/^no messages found for "nine"$/);
    // 20 results at a time; /search alone shows the next ones.
    for (let i = 1; i <= 21; i++) await bob.send(thread, { text: `zebra count ${i}` });
    await alice.line(/^\(\d+\) \[@bob\] bob: zebra count 21$/);
    alice.write('/search zebra');
    await alice.line(/^20 result\(s\) for "zebra":$/);
    await alice.line(/^\(more results: \/search\)$/);
    alice.write('/search');
    await alice.line(/^1 more result\(s\) for "zebra":$/);
    assert.deepEqual(await alice.end(), { code: 0, stderr: '' });

    function questionId(page: { messages: readonly MessageJson[] }): number {
      const found = page.messages.find((m) => m.sender_id !== aliceId && !m.deleted && /café/.test(JSON.stringify(m.body)));
      assert.ok(found, 'bob’s question is in the history');
      return found.id;
    }
  });

  it('/info N lists by username who has read a group message, whose devices have it and who is still waiting', { timeout: 60_000 }, async () => {
    const api = new AccountApi(server.url);
    // fred never logs in: nothing of his has the message.
    for (const username of ['carol', 'fred']) await api.register({ username, password: PASSWORD });
    const { client: carol } = await ChatClient.login({ server: server.url, username: 'carol', password: PASSWORD, deviceName: 'test' });
    // A second device of alice's hears the receipts about her messages: how the test knows carol's device has acked.
    const { client: watcher } = await ChatClient.login({ server: server.url, username: 'alice', password: PASSWORD, deviceName: 'watcher' });
    try {
      for (const client of [carol, watcher]) {
        await client.start();
        await client.whenOnline();
      }
      const alice = chat(['--state', aliceState]);
      alice.write('/group Trio bob carol fred');
      await alice.line(/^--- Trio ---$/);
      const arrived = received('who has seen this?');
      const carolAcked = watcher.once('receipt', (receipt) => receipt.user_id === carol.user?.id && receipt.kind === 'delivered');
      alice.write('who has seen this?');
      const message = await arrived;
      await bob.markRead(message.thread_id, message.seq);
      await carolAcked;
      const number = Number(/^\((\d+)\)/.exec(await alice.line(/^\(\d+\) \[Trio\] alice: who has seen this\?$/))?.[1]);
      alice.write(`/info ${number}`);
      await alice.line(new RegExp(`^message ${number}:$`));
      await alice.line(/^ {2}read by: bob$/);
      await alice.line(/^ {2}delivered to: carol$/);
      await alice.line(/^ {2}waiting: fred$/);
      alice.write('/info 9999');
      await alice.line(/^error: no message 9999 shown yet$/);
      assert.deepEqual(await alice.end(), { code: 0, stderr: '' });
      const created = alice.printed().filter((line) => / created the group "Trio"/.test(line));
      assert.deepEqual(created, ['[Trio] * alice created the group "Trio" with bob, carol, fred'], 'the creation is shown once, as it arrived');
    } finally {
      await carol.close();
      await watcher.close();
    }
  });

  it('exits 1 with the server’s message when the password is wrong, and saves nothing', async () => {
    const state = join(dir, 'wrong', 'state.json');
    const alice = chat(['--user', 'alice', '--state', state]);
    alice.write('not the password');
    const { code, stderr } = await alice.end();
    assert.equal(code, 1);
    assert.match(stderr, /^chatd: cannot log in as alice: wrong username or password\n$/);
    assert.equal(existsSync(`${state}.token`), false);
  });

  it('deletes a saved login the server no longer accepts, says to log in again and exits 1', async () => {
    const state = join(dir, 'revoked', 'state.json');
    const first = chat(['--user', 'alice', '--state', state]);
    first.write(PASSWORD);
    first.write('/quit');
    assert.equal((await first.end()).code, 0);
    const { token } = JSON.parse(readFileSync(`${state}.token`, 'utf8')) as { token: string };
    await new AccountApi(server.url, token).logout();

    const again = chat(['--state', state]);
    const { code, stderr } = await again.end();
    assert.equal(code, 1);
    assert.match(stderr, /refused the saved login .*run the same command again to log in/);
    assert.equal(existsSync(`${state}.token`), false);
  });

  it('with --encryption: /verify shows the safety number and its QR code and marks the user verified; /approve takes the code of a new device; /share-history lets it read the past', { timeout: 60_000 }, async () => {
    const api = new AccountApi(server.url);
    for (const username of ['dana', 'erik']) await api.register({ username, password: PASSWORD });
    const { client: erik } = await ChatClient.login({ server: server.url, username: 'erik', password: PASSWORD, deviceName: 'test', encryption: true });
    await erik.start();
    await erik.whenOnline();
    try {
      const dana = chat(['--user', 'dana', '--state', join(dir, 'dana', 'state.json'), '--encryption']);
      dana.write(PASSWORD);
      await dana.line(/^connected as dana /);
      dana.write('/verify erik');
      dana.write('yes');
      await dana.line(/^safety number with erik:$/);
      const rows = [await dana.line(/^ {2}(\d{5} ){3}\d{5}$/), await dana.line(/^ {2}(\d{5} ){3}\d{5}$/), await dana.line(/^ {2}(\d{5} ){3}\d{5}$/)];
      await dana.line(/[█▀▄]/); // the QR code
      await dana.line(/^compare it with erik's .*Type yes to mark erik verified:$/);
      await dana.line(/^erik is verified/);
      const danaId = (await erik.openDirect('dana')).peer?.id as number;
      assert.equal(rows.map((row) => row.trim()).join(' '), (await erik.safetyNumber(danaId)).number, 'both sides compute the same number');
      dana.write('/verify erik');
      dana.write('no');
      await dana.line(/^safety number with erik \(verified\):$/);
      await dana.line(/^erik not marked verified$/);

      dana.write('/dm erik');
      await dana.line(/^--- @erik ---$/);
      dana.write('sealed before the new phone');
      await dana.line(/^\(\d+\) \[@erik\] dana: sealed before the new phone$/);

      const { client: phone, login } = await ChatClient.login({ server: server.url, username: 'dana', password: PASSWORD, deviceName: 'phone', encryption: true });
      const approved = phone.once('account', ({ state }) => state === 'approved');
      const history = phone.once('history', (received) => received.parts_received === received.parts);
      await phone.start();
      await phone.whenOnline();
      await dana.line(new RegExp(`^\\* device ${login.device.id} wants to join your account`));
      dana.write('/devices');
      await dana.line(new RegExp(`^device ${login.device.id} \\(pending\\): (\\d{5} ){11}\\d{5}$`));
      dana.write(`/approve ${login.device.id}`);
      dana.write('00000 00000 00000 00000 00000 00000 00000 00000 00000 00000 00000 00000');
      await dana.line(/^error: the fingerprint does not match/);
      dana.write(`/approve ${login.device.id}`);
      dana.write(phone.ownFingerprint());
      await dana.line(new RegExp(`^device ${login.device.id} approved`));
      await approved;
      dana.write(`/share-history ${login.device.id}`);
      await dana.line(new RegExp(`^\\* history to device ${login.device.id}: part 1 of 1 sent$`));
      await dana.line(new RegExp(`^shared the keys of 1 messages with device ${login.device.id}$`));
      await history;
      const thread = (await phone.openDirect('erik')).id;
      const page = await phone.history(thread);
      assert.deepEqual(page.messages.map((m) => [m.body, m.e2e?.status, m.e2e?.via]), [[{ text: 'sealed before the new phone' }, 'ok', 'history']]);
      await phone.close();
      assert.equal((await dana.end()).code, 0);
    } finally {
      await erik.close();
    }
  });

  it('without --encryption: a thread turned encrypted says so, and what is typed there is refused saying what to run', async () => {
    const group = await bob.createGroup('Sealed', ['alice']);
    const alice = chat(['--state', aliceState]);
    await alice.line(/^connected as alice /);
    alice.write(`/open #${group.id}`);
    await alice.line(/^--- Sealed ---$/);
    await bob.requireEncryption(group.id);
    await alice.line(/^\[Sealed\] \* bob turned on end-to-end encryption: only encrypted messages from now on$/);
    alice.write('can you read this?');
    await alice.line(/^error: not sent: Sealed takes end-to-end encrypted messages only; run chatd chat with --encryption$/);
    assert.deepEqual(await alice.end(), { code: 0, stderr: '' });
  });

  it('refuses to start without --user when no login is saved, with the usage exit code', async () => {
    const { code, stderr } = await chat(['--state', join(dir, 'nobody', 'state.json')]).end();
    assert.equal(code, 2);
    assert.match(stderr, /--user is required/);
  });
});
