import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MessageJson } from '../../src/client/node.js';
import {
  changeNotice,
  firstWords,
  hasReacted,
  lineText,
  markMentionsOf,
  markRanges,
  reactionsText,
  replyText,
  searchResultLine,
} from '../../src/cli/chat-message-lines.js';
import { MessageNumbers } from '../../src/cli/chat-numbers.js';
import { Names, messageSegments, messageText, printable } from '../../src/cli/chat-render.js';

const message = (fields: Partial<MessageJson> = {}): MessageJson => ({
  id: 40,
  thread_id: 4,
  seq: 9,
  sender_id: 2,
  sender_device_id: 20,
  client_msg_id: 'c',
  kind: 'text',
  body: { text: 'see you @alice at 9' },
  created_at: 1_000,
  ...fields,
});

const names = new Names();
names.learn({ id: 1, username: 'alice', display_name: 'Alice' } as never);
names.learn({ id: 2, username: 'bob', display_name: 'Bob' } as never);

describe('chatd chat: message lines', () => {
  it('marks the reader’s own @mentions (without case), nobody else’s, and shows them **so** in a pipe', () => {
    assert.equal(lineText(markMentionsOf('hi @Alice and @alicia, mail alice@example.org', 'alice')), 'hi **@Alice** and @alicia, mail alice@example.org');
    assert.equal(lineText(markMentionsOf('@alice.', 'alice')), '**@alice**.', 'a trailing period is punctuation');
    assert.deepEqual(markMentionsOf('no mention', 'alice'), ['no mention']);
    assert.equal(lineText(['a ', { mark: 'b' }], (text) => `<${text}>`), 'a <b>', 'a terminal styles marks its own way');
  });

  it('a line says (edited) after an edited text and [deleted] instead of a deleted one', () => {
    assert.equal(lineText(messageSegments(message({ edited_at: 2_000 }), names, 'alice')), 'bob: see you **@alice** at 9 (edited)');
    assert.equal(lineText(messageSegments(message({ deleted: true, body: null }), names, 'alice')), 'bob: [deleted]');
    assert.equal(messageText(message({ deleted: true, body: null }), names), 'bob: [deleted]', 'also in /threads');
    assert.equal(lineText(messageSegments(message(), names, 'carol')), 'bob: see you @alice at 9', 'not the reader: not marked');
  });

  it('an encrypted message a client without encryption got says how to read it, not its ciphertext; turning encryption on is a notice', () => {
    const sealed = message({ kind: 'e2e', body: { v: 2, sender_device: 20, nonce: 'n', ciphertext: 'c', keys: {}, signature: 's' } });
    assert.equal(lineText(messageSegments(sealed, names, 'alice')), 'bob: (encrypted message: run chatd chat with --encryption to read it)');
    assert.equal(messageText(sealed, names), 'bob: (encrypted message: run chatd chat with --encryption to read it)', 'also in /threads');
    const opened = { ...sealed, body: { text: 'hi' }, e2e: { status: 'ok' } } as MessageJson;
    assert.equal(lineText(messageSegments(opened, names, 'alice')), 'bob: hi');
    assert.equal(messageText(message({ kind: 'system', body: { event: 'e2e_required' } }), names), '* bob turned on end-to-end encryption: only encrypted messages from now on');
  });

  it('reactions: "👍 2 ❤️ 1" in first-used order; a toggle knows whether the reader reacted', () => {
    const reactions = [
      { emoji: '👍', user_ids: [1, 2] },
      { emoji: '❤️', user_ids: [3] },
    ];
    assert.equal(reactionsText(reactions), '👍 2 ❤️ 1');
    assert.equal(reactionsText(undefined), '');
    assert.equal(hasReacted({ reactions }, '👍', 1), true);
    assert.equal(hasReacted({ reactions }, '❤️', 1), false);
    assert.equal(hasReacted({}, '👍', 1), false);
  });

  it('a reply quotes the first words of its target, [deleted] for a deleted one', () => {
    assert.equal(replyText(3, { text: 'hello there', deleted: false }), '↪ reply to 3: hello there');
    assert.equal(replyText(3, { text: '', deleted: true }), '↪ reply to 3: [deleted]');
    assert.equal(replyText(3, undefined), '↪ reply to 3 (an earlier message)');
    assert.equal(firstWords('one two three four five six seven eight nine ten eleven', 20), 'one two three four…');
    assert.equal(firstWords('a\n\nb'), 'a b');
  });

  it('change notices: edited, deleted, reacted, removed', () => {
    assert.equal(changeNotice('alice', { type: 'edit' }, 12), '* alice edited message 12');
    assert.equal(changeNotice('alice', { type: 'delete' }, 12), '* alice deleted message 12');
    assert.equal(changeNotice('bob', { type: 'reaction', emoji: '👍', on: true }, 3), '* bob reacted 👍 to message 3');
    assert.equal(changeNotice('bob', { type: 'reaction', emoji: '👍', on: false }, 3), '* bob removed 👍 from message 3');
  });

  it('a search result: number, thread, sender, date and time, the snippet with its hits marked', () => {
    const when = new Date(2026, 11, 5, 14, 3).getTime();
    const line = searchResultLine(7, '@bob', 'bob', when, '…the café\nopens at nine', [
      [5, 9],
      [19, 23],
    ]);
    assert.equal(lineText(line), '(7) [@bob] bob 2026-12-05 14:03: …the **café** opens at **nine**');
    assert.equal(lineText(markRanges('abc', [[5, 9]])), 'abc', 'offsets past the end are ignored');
    assert.equal(lineText(markRanges('abcdef', [[3, 5], [0, 2], [1, 4]])), '**abcde**f', 'sorted; overlapping ones merged');
    assert.equal(lineText(markRanges('abcdef', [[4, 5], [0, 2]])), '**ab**cd**e**f');
  });

  it('what others wrote cannot style the terminal: their text is made printable before marks are applied', () => {
    assert.equal(printable('\u001b[1mfake bold'), '\ufffd[1mfake bold');
  });
});

describe('chatd chat: message numbers', () => {
  it('gives each message one number for the run, in the order first shown, and keeps its latest state', () => {
    const numbers = new MessageNumbers();
    assert.equal(numbers.remember(message({ id: 40 }) as never), 1);
    assert.equal(numbers.numberOf(41, 4), 2, 'a reply target or a change named before its message is shown');
    assert.equal(numbers.remember(message({ id: 40, edited_at: 5 }) as never), 1, 'shown again: the same number');
    assert.equal(numbers.find(1)?.message?.edited_at, 5, 'the latest state');
    assert.deepEqual([numbers.find(2)?.id, numbers.find(2)?.threadId, numbers.find(2)?.message], [41, 4, undefined]);
    assert.equal(numbers.find(3), undefined);
  });
});
