import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  AccountApi, ChatClient, type ChatClientOptions, type ClientMessage, FileStore, type MessageChange, type MessageHidden, parseMentions,
} from '../../src/client/node.js';
import { ClientEvents } from '../helpers/client-events.js';
import { type ServerProcess, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';

/** What the app hears of message changes, recorded and waited on by event. */
class Changes extends ClientEvents {
  readonly changed: MessageChange[] = [];
  readonly hidden: MessageHidden[] = [];

  constructor(client: ChatClient) {
    super(client);
    client.on('message_changed', (change) => this.record(this.changed, change));
    client.on('message_hidden', (hidden) => this.record(this.hidden, hidden));
  }

  change(messageId: number, matches: (change: MessageChange) => boolean, what: string): Promise<MessageChange> {
    return this.until(() => this.changed.find((change) => change.messageId === messageId && matches(change)), what);
  }
}

const text = (message: ClientMessage | undefined): string | undefined => (message?.body as { text?: string } | null)?.text;

/**
 * The SDK's edits, deletes, replies, reactions, mentions, hidden messages and
 * search over the real server (docs/client.md, "Changing messages"; "Search"),
 * encrypted threads included: their edits are sealed and opened, and they are
 * searched in the device's own index.
 */
describe('the SDK: changing and finding messages', { timeout: 120_000 }, () => {
  const dir = tempDir();
  let server: ServerProcess;
  const clients: ChatClient[] = [];
  let names = 0;

  before(async () => {
    server = await startServer(['--data', join(dir, 'data'), '--config', writeConfig(dir, '[accounts]\nregistration = "open"\n[rate_limit]\nlogin_per_address = 100000\n')]);
  });
  after(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await server.stop();
  });

  async function user(prefix: string): Promise<string> {
    const name = `${prefix}${++names}`;
    await new AccountApi(server.url).register({ username: name, password: 'correct horse' });
    return name;
  }

  async function device(username: string, extra: Partial<ChatClientOptions> & { token?: string } = {}): Promise<Changes & { token: string }> {
    const token = extra.token ?? (await new AccountApi(server.url).login({ username, password: 'correct horse', device_name: 'sdk changes', platform: 'bot' })).token;
    const client = new ChatClient({ server: server.url, token, reconnect: { initialDelayMs: 50, maxDelayMs: 400 }, ...extra });
    clients.push(client);
    const events = new Changes(client);
    await client.start();
    await client.whenOnline();
    return Object.assign(events, { token });
  }

  it('edits, reactions and deletes reach the other member as message_changed, never as messages or unread', async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const [a, b] = [await device(alice), await device(bob)];
    const thread = await a.client.createGroup('changes', [bob]);
    const { members } = await a.client.thread(thread.id);
    const question = await a.client.send(thread.id, { text: 'lunch at noon?' });
    const body = `@${bob} yes, at the cafe`;
    await a.client.send(thread.id, { text: body }, { replyTo: question.message_id, mentions: parseMentions(body, members) });
    const reply = await b.text(thread.id, body);
    assert.equal(reply.reply_to, question.message_id);
    assert.deepEqual(reply.mentions, [b.client.user?.id]);
    // The group's creation (a system message) and the two messages.
    const unread = (await b.client.threads()).threads.find((t) => t.id === thread.id)?.unread;
    assert.equal(unread, 3);
    const before = b.messages.length;

    await a.client.edit(question.message_id, { text: 'lunch at one?' });
    const edited = await b.change(question.message_id, (c) => c.change.type === 'edit', 'the edit');
    assert.equal(text(edited.message), 'lunch at one?');
    assert.ok(edited.message?.edited_at);
    assert.equal(edited.by.sender_id, a.client.user?.id);

    assert.notEqual(await b.client.react(question.message_id, '👍'), undefined);
    assert.equal(await b.client.react(question.message_id, '👍'), undefined, 'the same reaction again changes nothing: ok');
    const reacted = await a.change(question.message_id, (c) => c.change.type === 'reaction', 'the reaction');
    assert.deepEqual(reacted.message?.reactions, [{ emoji: '👍', user_ids: [b.client.user?.id] }]);
    await assert.rejects(b.client.react(question.message_id, 'not an emoji'), { code: 'invalid_field' });
    await assert.rejects(b.client.edit(question.message_id, { text: 'not mine' }), { code: 'forbidden' });

    await a.client.deleteMessage(reply.id, { forEveryone: true });
    const deleted = await b.change(reply.id, (c) => c.change.type === 'delete', 'the delete');
    assert.equal(deleted.message?.deleted, true);
    assert.equal(deleted.message?.body, null);
    assert.equal(await a.client.deleteMessage(reply.id, { forEveryone: true }), undefined, 'deleted already: ok');

    // Changes came, and no message; Bob's own reaction moved his read cursor like a send (nothing unread), and
    // Alice's later delete did not count: the client's count is the server's.
    assert.equal(b.messages.length, before, 'change messages are never given as messages');
    assert.equal(b.client.unread(thread.id), 0);
    assert.equal((await b.client.threads()).threads.find((t) => t.id === thread.id)?.unread, 0, 'the server agrees');
    const page = await b.client.history(thread.id);
    const shown = page.messages.filter((m) => m.kind !== 'system').map((m) => [text(m) ?? null, m.deleted ?? false]);
    assert.deepEqual(shown, [['lunch at one?', false], [null, true]], 'history shows the latest state, no change messages');
  });

  it('a device that was away gets the changes once each after a restart, and hidden messages through the hidden list', async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const a = await device(alice);
    const store = join(dir, `${bob}.json`);
    let b = await device(bob, { store: new FileStore(store) });
    const thread = await a.client.openDirect(bob);
    const sent = await a.client.send(thread.id, { text: 'first version' });
    const other = await a.client.send(thread.id, { text: 'hide this one' });
    await b.text(thread.id, 'hide this one');
    const token = b.token;
    await b.client.close();

    await a.client.edit(sent.message_id, { text: 'second version' });
    await a.client.react(sent.message_id, '🎉');
    // Bob hides a message on another device while this one is away.
    const b2 = await device(bob);
    await b2.client.deleteMessage(other.message_id, { forEveryone: false });
    await b2.until(() => b2.hidden.find((h) => h.messageId === other.message_id), 'hidden on the device that hid it');

    b = await device(bob, { token, store: new FileStore(store) });
    const edit = await b.change(sent.message_id, (c) => c.change.type === 'edit', 'the edit, after the restart');
    assert.equal(text(edit.by), 'second version');
    await b.change(sent.message_id, (c) => c.change.type === 'reaction', 'the reaction, after the restart');
    await b.until(() => b.hidden.find((h) => h.messageId === other.message_id), 'the hidden message, after the restart');
    assert.equal(b.changed.length, 2, 'each change once');
    assert.equal(b.messages.length, 0, 'nothing given as a message again');
    const page = await b.client.history(thread.id);
    assert.deepEqual(page.messages.map(text), ['second version'], 'history leaves the hidden message out');

    // Restarted again: the hidden cursor was stored, nothing is told twice.
    await b.client.close();
    b = await device(bob, { token, store: new FileStore(store) });
    await b.client.threads();
    assert.deepEqual(b.hidden, []);
    assert.deepEqual(b.changed, []);
  });

  it('search finds plaintext messages on the server with and without diacritics, as the user can see them', async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const [a, b] = [await device(alice), await device(bob)];
    const thread = await a.client.openDirect(bob);
    await a.client.send(thread.id, { text: 'Rendez-vous au café' });
    await b.text(thread.id, 'Rendez-vous au café');
    const page = await b.client.search('CAFE');
    assert.equal(page.results.length, 1);
    const [result] = page.results;
    assert.equal(result?.source, 'server');
    assert.equal(text(result?.message), 'Rendez-vous au café');
    assert.deepEqual(result?.highlights.map(([start, end]) => result.snippet.slice(start, end)), ['café']);
    assert.equal(page.nextCursor, null);
    await assert.rejects(b.client.search('   '), { code: 'invalid_field' });
    // Nothing from a thread the searcher is not in.
    const c = await device(await user('carol'));
    assert.deepEqual((await c.client.search('cafe')).results, []);
    assert.deepEqual((await c.client.searchUsers(alice.slice(0, 4), 20)).map((u) => u.username).includes(alice), true, 'people by prefix');
  });

  it('in an encrypted thread: edits are sealed and open on the other side and in history; the local index follows them', async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const [a, b] = [await device(alice, { encryption: true }), await device(bob, { encryption: true })];
    const thread = await a.client.createGroup('secret', [bob], { e2eRequired: true });
    const sent = await a.client.send(thread.id, { text: 'Crème brûlée recipe' });
    const got = await b.text(thread.id, 'Crème brûlée recipe');
    assert.equal(got.e2e?.status, 'ok');

    const local = await b.client.search('creme brul');
    assert.deepEqual(local.results.map((r) => [r.source, r.message.id]), [['local', sent.message_id]]);
    assert.deepEqual(local.results[0]?.highlights.map(([s, e]) => local.results[0]?.snippet.slice(s, e)), ['Crème', 'brûlée']);

    await a.client.edit(sent.message_id, { text: 'Tarte tatin recipe' });
    const edited = await b.change(sent.message_id, (c) => c.change.type === 'edit', 'the encrypted edit');
    assert.equal(edited.by.e2e?.status, 'ok');
    assert.equal(text(edited.message), 'Tarte tatin recipe');
    assert.deepEqual((await b.client.search('creme')).results, []);
    assert.deepEqual((await b.client.search('tatin')).results.map((r) => r.message.id), [sent.message_id]);

    // The server shows the edit's envelope as the message's body: it opens as that message.
    const page = await b.client.history(thread.id);
    const shown = page.messages.find((m) => m.id === sent.message_id);
    assert.equal(shown?.e2e?.status, 'ok');
    assert.equal(text(shown), 'Tarte tatin recipe');
    assert.ok(shown?.edited_at);

    await a.client.deleteMessage(sent.message_id, { forEveryone: true });
    await b.change(sent.message_id, (c) => c.change.type === 'delete', 'the delete');
    assert.deepEqual((await b.client.search('tatin')).results, []);
  });
});
