import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ClientMessage, type SearchResult, type UserJson, deletedState, toggled } from '../../src/client/index.js';
import { changedMessage, hitsAfterChange } from '../../web/src/message-changes.js';
import { insertMention, isMentioned, mentionCandidates, mentionQuery, mentionRuns } from '../../web/src/mentions.js';
import { highlightRuns } from '../../web/src/snippets.js';

/** The web client's pure message helpers: mentions, live changes, snippets. */

const user = (id: number, username: string, display_name = username): UserJson => ({ id, username, display_name }) as UserJson;
const ann = user(1, 'ann', 'Ann Lee');
const bob = user(2, 'bob', 'Bob Stone');
const bobby = user(3, 'bobby.t', 'Robert T');
const message = (fields: Partial<ClientMessage> = {}): ClientMessage =>
  ({ id: 10, thread_id: 5, seq: 3, sender_id: 1, sender_device_id: 1, client_msg_id: 'c', kind: 'text', body: { text: 'hi' }, created_at: 1000, ...fields }) as ClientMessage;

describe('mentions', () => {
  it('finds the @word at the caret only at a word start (not in an e-mail address)', () => {
    assert.deepEqual(mentionQuery('hi @bo', 6), { start: 3, query: 'bo' });
    assert.deepEqual(mentionQuery('@', 1), { start: 0, query: '' });
    assert.deepEqual(mentionQuery('(@b', 3), { start: 1, query: 'b' });
    assert.equal(mentionQuery('ann@example', 11), undefined);
    assert.equal(mentionQuery('hi @bo there', 12), undefined, 'the caret is past the word');
  });

  it('offers members by username, then by a word of the display name, never the writer', () => {
    assert.deepEqual(mentionCandidates('bo', [ann, bob, bobby], 1).map((u) => u.id), [2, 3]);
    assert.deepEqual(mentionCandidates('rob', [ann, bob, bobby], 1).map((u) => u.id), [3]);
    assert.deepEqual(mentionCandidates('', [ann, bob], 1).map((u) => u.id), [2]);
    assert.deepEqual(mentionCandidates('ann', [ann, bob], 1), []);
  });

  it('inserts @username and a space, replacing the typed part and the rest of that word', () => {
    assert.deepEqual(insertMention('hi @bo', { start: 3, query: 'bo' }, 6, 'bob'), { text: 'hi @bob ', caret: 8 });
    assert.deepEqual(insertMention('@bxyz ok', { start: 0, query: 'b' }, 2, 'bob'), { text: '@bob ok', caret: 5 });
  });

  it('cuts text into runs: only the mentioned users are highlighted, sentence punctuation stays out', () => {
    assert.deepEqual(mentionRuns('hi @bob and @carl.', [bob]), [{ text: 'hi ' }, { text: '@bob', userId: 2 }, { text: ' and @carl.' }]);
    assert.deepEqual(mentionRuns('ask @bobby.t.', [bob, bobby]), [{ text: 'ask ' }, { text: '@bobby.t', userId: 3 }, { text: '.' }]);
    assert.deepEqual(mentionRuns('@BOB!', [bob]), [{ text: '@BOB', userId: 2 }, { text: '!' }]);
    assert.deepEqual(mentionRuns('mail ann@bob', [bob]), [{ text: 'mail ann@bob' }]);
    assert.deepEqual(mentionRuns('no one', []), [{ text: 'no one' }]);
  });

  it('isMentioned: by id, not for own, deleted or change messages', () => {
    assert.equal(isMentioned(message({ sender_id: 2, mentions: [1] }), 1), true);
    assert.equal(isMentioned(message({ sender_id: 2, mentions: [3] }), 1), false);
    assert.equal(isMentioned(message({ sender_id: 2 }), 1), false);
    assert.equal(isMentioned(message({ sender_id: 1, mentions: [1] }), 1), false);
    assert.equal(isMentioned(message({ sender_id: 2, mentions: [1], deleted: true }), 1), false);
    assert.equal(isMentioned(message({ sender_id: 2, mentions: [1], change: { type: 'edit', message_id: 4 } }), 1), false);
  });
});

describe('live changes', () => {
  const by = (fields: Partial<ClientMessage> = {}): ClientMessage => message({ id: 20, seq: 9, body: null, ...fields });

  it('an edit takes the new body, mentions and time; a reaction toggles the reactor', () => {
    const edited = changedMessage(message({ mentions: [2] }), { type: 'edit', message_id: 10 }, by({ created_at: 2000, body: { text: 'hello' } }));
    assert.deepEqual(edited.body, { text: 'hello' });
    assert.equal(edited.edited_at, 2000);
    assert.equal(edited.mentions, undefined);
    const liked = changedMessage(edited, { type: 'reaction', message_id: 10, emoji: '👍', on: true }, by({ sender_id: 2, created_at: 3000 }));
    assert.deepEqual(liked.reactions, [{ emoji: '👍', user_ids: [2] }]);
    const unliked = changedMessage(liked, { type: 'reaction', message_id: 10, emoji: '👍', on: false }, by({ sender_id: 2, created_at: 3001 }));
    assert.equal(unliked.reactions, undefined);
    assert.equal(changedMessage(edited, { type: 'edit', message_id: 10 }, undefined), edited, 'an edit without its change message changes nothing');
  });

  it('an encrypted edit brings the files it carries inside (the SDK\'s rule)', () => {
    const ok = { status: 'ok' } as ClientMessage['e2e'];
    const files = [{ id: 'new', name: 'b.png' }] as ClientMessage['attachments'];
    const target = message({ kind: 'e2e', e2e: ok, attachments: [{ id: 'old', name: 'a.png' }] as ClientMessage['attachments'] });
    const edited = changedMessage(target, { type: 'edit', message_id: 10 }, by({ kind: 'e2e', e2e: ok, body: { text: 'new' }, attachments: files }));
    assert.deepEqual(edited.attachments, files);
  });

  it('a delete leaves a tombstone that later edits and reactions do not bring back', () => {
    const gone = changedMessage(message({ reactions: [{ emoji: '👍', user_ids: [2] }], mentions: [2], edited_at: 5 }), { type: 'delete', message_id: 10 }, undefined);
    assert.deepEqual(gone, deletedState(message()));
    assert.equal(gone.body, null);
    assert.equal(gone.deleted, true);
    assert.equal(gone.reactions, undefined);
    const late = changedMessage(gone, { type: 'edit', message_id: 10 }, by({ created_at: 9, body: { text: 'back?' } }));
    assert.equal(late.body, null);
    assert.equal(changedMessage(gone, { type: 'reaction', message_id: 10, emoji: '👍', on: true }, by({ sender_id: 2 })).reactions, undefined);
  });

  it('toggles keep first-reacted order and drop an emoji nobody uses', () => {
    const start = [{ emoji: '👍', user_ids: [1] }, { emoji: '😂', user_ids: [2] }];
    assert.deepEqual(toggled(start, '😂', 1, true), [{ emoji: '👍', user_ids: [1] }, { emoji: '😂', user_ids: [2, 1] }]);
    assert.deepEqual(toggled(start, '👍', 1, false), [{ emoji: '😂', user_ids: [2] }]);
    assert.deepEqual(toggled(start, '👍', 1, true), start, 'on twice is once');
    assert.deepEqual(toggled([{ emoji: '👍', user_ids: [1, 2] }], '👍', 1, true), [{ emoji: '👍', user_ids: [1, 2] }], 'on again does not move the user last');
    assert.deepEqual(toggled(start, '🙏', 3, false), start);
  });
});

describe('search results after a change', () => {
  const hit = (m: ClientMessage): SearchResult => ({ message: m, snippet: 'say hi', highlights: [[4, 6]], source: 'server' });
  const other = hit(message({ id: 11, seq: 4 }));
  const results = [hit(message()), other];
  const apply = (change: Parameters<typeof changedMessage>[1], changeBy?: ClientMessage) => hitsAfterChange(results, 10, change, (m) => changedMessage(m, change, changeBy));

  it('a message deleted for everyone is no longer a hit', () => {
    assert.deepEqual(apply({ type: 'delete', message_id: 10 }), [other]);
  });

  it('an edited hit stays, with its new message and text, unmarked', () => {
    const [edited, rest] = apply({ type: 'edit', message_id: 10 }, message({ id: 20, seq: 9, created_at: 2000, body: { text: 'hello there' } }));
    assert.deepEqual(edited?.message.body, { text: 'hello there' });
    assert.equal(edited?.message.edited_at, 2000);
    assert.equal(edited?.snippet, 'hello there');
    assert.deepEqual(edited?.highlights, []);
    assert.equal(rest, other);
    const long = 'x'.repeat(159) + '😀' + 'y'.repeat(50);
    const [clipped] = apply({ type: 'edit', message_id: 10 }, message({ id: 20, body: { text: long } }));
    assert.equal(clipped?.snippet, `${'x'.repeat(159)}…`, 'cut, not between the halves of an emoji');
  });

  it('a reaction keeps the snippet and its marks', () => {
    const [liked] = apply({ type: 'reaction', message_id: 10, emoji: '👍', on: true }, message({ id: 20, sender_id: 2, body: null }));
    assert.deepEqual(liked?.message.reactions, [{ emoji: '👍', user_ids: [2] }]);
    assert.equal(liked?.snippet, 'say hi');
    assert.deepEqual(liked?.highlights, [[4, 6]]);
  });
});

describe('snippets', () => {
  it('marks the hits, clipping offsets that overlap or run past the end', () => {
    assert.deepEqual(highlightRuns('the café is open', [[4, 8]]), [{ text: 'the ', hit: false }, { text: 'café', hit: true }, { text: ' is open', hit: false }]);
    assert.deepEqual(highlightRuns('abc', [[2, 9], [0, 1], [0, 2]]), [{ text: 'a', hit: true }, { text: 'b', hit: true }, { text: 'c', hit: true }]);
    assert.deepEqual(highlightRuns('abc', []), [{ text: 'abc', hit: false }]);
  });
});
