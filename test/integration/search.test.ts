import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { signUp } from '../helpers/http.js';
import { type ServerProcess, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { type Connected, connectAuthenticated } from '../helpers/ws.js';

const CONFIG = `
[accounts]
registration = "open"
[rate_limit]
login_per_address = 100000
[search]
searches_per_minute = 100000
`;

/** The search request over raw WebSocket frames, on the built server (SQLite). */
describe('search over the protocol', () => {
  let server: ServerProcess;
  const people: Record<string, { userId: number; c: Connected }> = {};
  let group: number;

  before(async () => {
    const dir = tempDir();
    server = await startServer(['--data', `${dir}/data`, '--config', writeConfig(dir, CONFIG)]);
    for (const name of ['alice', 'bob', 'carol']) {
      const account = await signUp(server.url, name);
      people[name] = { userId: account.userId, c: await connectAuthenticated(server.wsUrl, account.token) };
    }
    const created = await who('alice').expect({ type: 'group_create', title: 'trip', members: [people.bob?.userId, people.carol?.userId] }, 'thread');
    group = created.thread.id;
  });
  after(async () => {
    for (const person of Object.values(people)) person.c.socket.close();
    await server?.stop();
  });

  const who = (name: string) => (people[name] as { c: Connected }).c.socket;
  let sent = 0;
  const send = async (name: string, text: string): Promise<number> => (await who(name).expect({ type: 'send', thread_id: group, client_msg_id: `m${++sent}`, body: { text } }, 'ack')).message_id;
  const search = (name: string, frame: Record<string, unknown>) => who(name).request({ type: 'search', ...frame });

  it('finds a message by a word without its diacritics, with the message, a snippet and highlights', async () => {
    const id = await send('alice', 'The Café opens at nine');
    const reply = await search('bob', { query: 'cafe' });
    assert.equal(reply.type, 'search_results');
    assert.equal(reply.next_cursor, null);
    assert.equal(reply.results.length, 1);
    const [hit] = reply.results;
    assert.equal(hit.message.id, id);
    assert.equal(hit.message.thread_id, group);
    assert.deepEqual(hit.message.body, { text: 'The Café opens at nine' });
    assert.equal(hit.snippet, 'The Café opens at nine');
    assert.deepEqual(hit.highlights, [[4, 8]]);
  });

  it('finds Japanese by a substring, and pages with next_cursor', async () => {
    const first = await send('bob', '東京タワーに行きました');
    const second = await send('bob', '東京駅で会いましょう');
    assert.deepEqual((await search('alice', { query: 'タワー' })).results.map((hit: { message: { id: number } }) => hit.message.id), [first]);
    const page1 = await search('alice', { query: '東京', limit: 1 });
    assert.deepEqual(page1.results.map((hit: { message: { id: number } }) => hit.message.id), [second]);
    assert.equal(typeof page1.next_cursor, 'string');
    const page2 = await search('alice', { query: '東京', limit: 1, cursor: page1.next_cursor });
    assert.deepEqual(page2.results.map((hit: { message: { id: number } }) => hit.message.id), [first]);
    assert.equal(page2.next_cursor, null);
  });

  it('does not find, for a member removed from the group, what was said after the removal', async () => {
    const early = await send('alice', 'pelican sighting at the lake');
    await who('alice').expect({ type: 'group_remove', thread_id: group, user_id: people.carol?.userId }, 'ok');
    const late = await send('alice', 'pelican flew away after carol left');
    const ids = async (name: string) => (await search(name, { query: 'pelican' })).results.map((hit: { message: { id: number } }) => hit.message.id);
    assert.deepEqual(await ids('carol'), [early]);
    assert.deepEqual(new Set(await ids('bob')), new Set([late, early]), 'bob, still a member, finds both');
    assert.deepEqual((await search('carol', { query: 'flew away' })).results, []);
  });

  it('filters by thread and sender', async () => {
    const id = await send('bob', 'heron by bob');
    await send('alice', 'heron by alice');
    const reply = await search('alice', { query: 'heron', thread_id: group, sender_id: people.bob?.userId });
    assert.deepEqual(reply.results.map((hit: { message: { id: number } }) => hit.message.id), [id]);
    assert.deepEqual((await search('alice', { query: 'heron', thread_id: 999_999 })).results, []);
  });

  it('searches query syntax literally and refuses bad input with invalid_field naming the field', async () => {
    for (const query of ['"', 'NEAR(a b)', 'body:', '*', '(', 'a AND OR NOT', '-', '^', "'; DROP TABLE messages; --", '%', '\\']) {
      const reply = await search('alice', { query });
      assert.equal(reply.type, 'search_results', `${query}: ${JSON.stringify(reply)}`);
    }
    const refusals: Array<[Record<string, unknown>, string]> = [
      [{ query: '' }, 'query'],
      [{ query: '    ' }, 'query'],
      [{ query: 'x'.repeat(201) }, 'query'],
      [{}, 'query'],
      [{ query: 42 }, 'query'],
      [{ query: 'a', limit: 0 }, 'limit'],
      [{ query: 'a', limit: 51 }, 'limit'],
      [{ query: 'a', limit: 'ten' }, 'limit'],
      [{ query: 'a', cursor: 'not-a-cursor' }, 'cursor'],
      [{ query: 'a', cursor: '' }, 'cursor'],
      [{ query: 'a', thread_id: -1 }, 'thread_id'],
      [{ query: 'a', after: 'yesterday' }, 'after'],
    ];
    for (const [frame, field] of refusals) {
      const reply = await search('alice', frame);
      assert.equal(reply.type, 'error', JSON.stringify(frame));
      assert.equal(reply.error.code, 'invalid_field', JSON.stringify(frame));
      assert.equal(reply.error.field, field, JSON.stringify(frame));
    }
    assert.equal((await search('alice', { query: 'é'.repeat(200) })).type, 'search_results', '200 characters are allowed');
  });
});

describe('search turned off', () => {
  it('answers not_found', async () => {
    const dir = tempDir();
    const server = await startServer(['--data', `${dir}/data`, '--config', writeConfig(dir, CONFIG.replace('[search]', '[search]\nenabled = false'))]);
    try {
      const account = await signUp(server.url, 'dora');
      const { socket } = await connectAuthenticated(server.wsUrl, account.token);
      const reply = await socket.request({ type: 'search', query: 'anything' });
      assert.equal(reply.type, 'error');
      assert.equal(reply.error.code, 'not_found');
      socket.close();
    } finally {
      await server.stop();
    }
  });
});
