import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ClientMessage } from '../../src/client/e2e-types.js';
import { LocalSearch, type SearchResult, searchableText } from '../../src/client/local-search.js';
import { FIRST_PAGE, decodeSearchCursor, encodeSearchCursor, interleave, localPage } from '../../src/client/search-merge.js';
import { MessageState } from '../../src/client/message-state.js';
import { snippetOf } from '../../src/client/search-snippet.js';
import { MemoryStore } from '../../src/client/store.js';
import { FileStore } from '../../src/client/file-store.js';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/tmp.js';

const decrypted = (id: number, text: string, extra: Partial<ClientMessage> = {}): ClientMessage => ({
  id, thread_id: 1, seq: id, sender_id: 7, sender_device_id: 70, client_msg_id: `c${id}`, kind: 'e2e', body: { text }, created_at: 1000 + id,
  e2e: { status: 'ok', fingerprint: 'f' }, ...extra,
});
const ids = (results: readonly SearchResult[]): number[] => results.map((result) => result.message.id);

describe('LocalSearch', () => {
  it('finds words without case or diacritics, the last word as a prefix, all words required', async () => {
    const index = await LocalSearch.load();
    index.put(decrypted(1, 'Rendez-vous au Café à midi'));
    index.put(decrypted(2, 'the cafe is closed'));
    index.put(decrypted(3, 'Crème brûlée for everyone'));
    assert.deepEqual(ids(index.search('CAFÉ')).sort(), [1, 2]);
    assert.deepEqual(ids(index.search('creme brul')), [3]);
    assert.deepEqual(ids(index.search('cafe midi')), [1]);
    assert.deepEqual(ids(index.search('cafe nowhere')), []);
  });

  it('finds a CJK substring across the segmenter\'s word boundaries', async () => {
    const index = await LocalSearch.load();
    index.put(decrypted(1, '東京都に住んでいます'));
    index.put(decrypted(2, '京都へ行きました'));
    assert.deepEqual(ids(index.search('京都')).sort(), [1, 2]);
    assert.deepEqual(ids(index.search('東京都')), [1]);
    const [hit] = index.search('京都').filter((result) => result.message.id === 1);
    assert.deepEqual(hit?.highlights, [[1, 3]]);
  });

  it('indexes only decrypted messages, and follows edits and deletes', async () => {
    const index = await LocalSearch.load();
    index.put(decrypted(1, 'secret plan'));
    index.put(decrypted(2, 'unreadable plan', { e2e: { status: 'undecryptable', fingerprint: undefined } }));
    index.put({ ...decrypted(3, 'plaintext plan'), kind: 'text', e2e: undefined });
    assert.deepEqual(ids(index.search('plan')), [1]);
    index.put(decrypted(1, 'revised scheme', { edited_at: 5000 }));
    assert.deepEqual(ids(index.search('plan')), []);
    assert.deepEqual(ids(index.search('scheme')), [1]);
    assert.equal(index.message(1)?.edited_at, 5000, 'the stored copy is the edited one');
    index.put({ ...decrypted(1, ''), body: null, deleted: true });
    assert.deepEqual(ids(index.search('scheme')), []);
    assert.equal(index.size, 0);
    index.put(decrypted(4, 'another'));
    index.remove(4);
    assert.equal(index.has(4), false);
  });

  it('filters by thread, sender and date', async () => {
    const index = await LocalSearch.load();
    index.put(decrypted(1, 'hello', { thread_id: 1, sender_id: 7, created_at: 100 }));
    index.put(decrypted(2, 'hello', { thread_id: 2, sender_id: 8, created_at: 200 }));
    index.put(decrypted(3, 'hello', { thread_id: 2, sender_id: 7, created_at: 300 }));
    assert.deepEqual(ids(index.search('hello', { threadId: 2 })).sort(), [2, 3]);
    assert.deepEqual(ids(index.search('hello', { senderId: 7 })).sort(), [1, 3]);
    assert.deepEqual(ids(index.search('hello', { after: 100, before: 300 })), [2]);
    assert.deepEqual(ids(index.search('hello')), [3, 2, 1], 'equal scores: newest first');
  });

  it('searches the text the server would: body.text or a string body, and attachment names', () => {
    assert.equal(searchableText({ body: { text: 'a' }, attachments: [{ id: 'x', name: 'plan.pdf' }] }), 'a\nplan.pdf');
    assert.equal(searchableText({ body: 'just a string' }), 'just a string');
    assert.equal(searchableText({ body: { other: 1 } }), '');
  });

  it('survives serialisation, and drops an unreadable saved index instead of failing', async () => {
    const index = await LocalSearch.load();
    index.put(decrypted(1, 'persisted words'));
    const again = await LocalSearch.load(index.serialise());
    assert.deepEqual(ids(again.search('persist')), [1]);
    const broken = await LocalSearch.load('{not json');
    assert.equal(broken.size, 0);
  });
});

describe('snippets', () => {
  it('marks every hit with UTF-16 offsets into the snippet, folded like the index', () => {
    const { snippet, highlights } = snippetOf('Un café, deux cafés', ['cafe']);
    assert.equal(snippet, 'Un café, deux cafés');
    assert.deepEqual(highlights.map(([start, end]) => snippet.slice(start, end)), ['café', 'café']);
  });

  it('cuts long text around the first hit with … and shifts the highlights', () => {
    const text = `${'a '.repeat(200)}needle ${'b '.repeat(200)}`;
    const { snippet, highlights } = snippetOf(text, ['needle']);
    assert.ok(snippet.startsWith('…') && snippet.endsWith('…'));
    assert.ok(snippet.length <= 162);
    assert.equal(highlights.length, 1);
    assert.equal(snippet.slice(...(highlights[0] as [number, number])), 'needle');
  });

  it('marks a word term only at the start of a word', () => {
    assert.deepEqual(snippetOf('within in', ['in']).highlights, [[7, 9]]);
  });
});

describe('merging server and local results', () => {
  const result = (id: number, source: 'server' | 'local'): SearchResult => ({ message: decrypted(id, 'x'), snippet: 'x', highlights: [], source });

  it('interleaves the two lists, each in its order, without repeating a message', () => {
    const merged = interleave([result(1, 'server'), result(2, 'server'), result(3, 'server')], [result(10, 'local'), result(2, 'local')]);
    assert.deepEqual(merged.map((item) => `${item.source}:${item.message.id}`), ['server:1', 'local:10', 'server:2', 'server:3']);
  });

  it('pages the local list and carries both positions in one cursor', () => {
    const all = [1, 2, 3, 4, 5].map((id) => result(id, 'local'));
    const first = localPage(all, 0, 2);
    assert.deepEqual(ids(first.results), [1, 2]);
    assert.equal(first.next, 2);
    assert.equal(localPage(all, 4, 2).next, null);
    const cursor = encodeSearchCursor({ server: 'opaque"server cursor', local: 2 });
    assert.ok(cursor);
    assert.deepEqual(decodeSearchCursor(cursor), { server: 'opaque"server cursor', local: 2 });
    assert.equal(encodeSearchCursor({ server: null, local: null }), null, 'both done: no next page');
    assert.deepEqual(FIRST_PAGE, { server: undefined, local: 0 });
    assert.throws(() => decodeSearchCursor('garbage'), { code: 'invalid_field' });
    assert.throws(() => decodeSearchCursor('s1.[1, -4]'), { code: 'invalid_field' });
  });
});

describe('MessageState', () => {
  const state = async (store = new MemoryStore()): Promise<MessageState> => {
    const messages = new MessageState({ store, cacheSize: 100, localSearch: 'store', reportError: (error) => assert.fail(String(error)) });
    await messages.load(undefined);
    return messages;
  };

  it('applies changes to the cached copy and the index; a delete of an uncached message still leaves the index', async () => {
    const messages = await state();
    messages.seen(decrypted(1, 'first words'));
    const edited = messages.changed({ ...decrypted(5, 'second words'), change: { type: 'edit', message_id: 1 } });
    assert.deepEqual(edited?.body, { text: 'second words' });
    assert.deepEqual(ids(messages.local?.search('second') ?? []), [1]);
    messages.cache.clear();
    assert.deepEqual(messages.target(1)?.body, { text: 'second words' }, 'the index\'s copy stands in for the cache');
    messages.changed({ ...decrypted(6, ''), body: null, change: { type: 'delete', message_id: 1 } });
    assert.deepEqual(ids(messages.local?.search('second') ?? []), []);
  });

  it('drops hidden messages, tells each once, and keeps the cursor in the store', async () => {
    const store = new MemoryStore();
    const messages = await state(store);
    messages.seen(decrypted(1, 'hide me'));
    assert.deepEqual(messages.hidden([{ thread_id: 1, message_id: 1 }]), [{ thread_id: 1, message_id: 1 }]);
    assert.equal(messages.target(1), undefined);
    assert.deepEqual(messages.local?.search('hide'), []);
    // The server's event for the same message (with its id) moves the cursor but is not told again.
    assert.deepEqual(messages.hidden([{ thread_id: 1, message_id: 1 }], 12), []);
    assert.equal(messages.hiddenCursor, 12);
    assert.equal((await store.load()).hiddenCursor, 12);
  });

  it('saves the index to a store that keeps one, and loads it at the next start', async () => {
    const store = new MemoryStore();
    const first = await state(store);
    first.seen(decrypted(1, 'remembered text'));
    await first.flush();
    const second = await state(store);
    assert.deepEqual(ids(second.local?.search('remembered') ?? []), [1]);
    second.reset();
    await second.flush();
    assert.equal(await store.loadLocalIndex(), undefined, 'a reset drops the saved index');
  });
});

describe('FileStore and the local index', () => {
  it('keeps the index in its own file beside the store (mode 0600), the last save winning; undefined removes it', async () => {
    const path = join(tempDir(), 'client.json');
    const store = new FileStore(path);
    await store.load();
    assert.equal(await store.loadLocalIndex(), undefined);
    void store.saveLocalIndex('first');
    await store.saveLocalIndex('second');
    await store.flush();
    assert.equal(await new FileStore(path).loadLocalIndex(), 'second');
    assert.equal(statSync(`${path}.search`).mode & 0o777, 0o600);
    await store.setCursor(1, 5);
    assert.equal(await new FileStore(path).loadLocalIndex(), 'second', 'a cursor write leaves the index file alone');
    await store.saveLocalIndex(undefined);
    assert.equal(existsSync(`${path}.search`), false);
  });
});
