import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { E2eSession } from '../../src/client/e2e.js';
import { openEdit, openEditNow } from '../../src/client/e2e-edits.js';
import type { ClientMessage } from '../../src/client/e2e-types.js';
import { MessageCache, applyChange, toggled } from '../../src/client/message-changes.js';
import { parseMentions } from '../../src/client/mentions.js';
import { readSealedEdit, sealedEdit } from '../../src/client/sealed-edit.js';
import { ThreadList } from '../../src/client/thread-list.js';
import type { ChangeJson, ThreadJson } from '../../src/protocol/frames.js';

const content = (id: number, text: string, extra: Partial<ClientMessage> = {}): ClientMessage => ({
  id, thread_id: 1, seq: id, sender_id: 7, sender_device_id: 70, client_msg_id: `c${id}`, kind: 'text', body: { text }, created_at: 1000 + id, ...extra,
});
const change = (id: number, change: ChangeJson, extra: Partial<ClientMessage> = {}): ClientMessage & { change: ChangeJson } => ({
  ...content(id, '', { body: null, ...extra }), change,
});

describe('applyChange', () => {
  it('takes an edit\'s body, mentions and time, and keeps the attachments (they are not edited)', () => {
    const target = content(1, 'helo', { attachments: [{ id: 'up1', name: 'a.png' }], mentions: [3] });
    const updated = applyChange(target, change(5, { type: 'edit', message_id: 1 }, { body: { text: 'hello' }, mentions: [4] }));
    assert.deepEqual(updated.body, { text: 'hello' });
    assert.equal(updated.edited_at, 1005);
    assert.deepEqual(updated.mentions, [4]);
    assert.deepEqual(updated.attachments, [{ id: 'up1', name: 'a.png' }]);
    assert.equal(updated.seq, 1, 'the message keeps its place');
    const noMentions = applyChange(target, change(6, { type: 'edit', message_id: 1 }, { body: { text: 'x' } }));
    assert.equal(noMentions.mentions, undefined, 'an edit without mentions leaves none');
  });

  it('leaves a tombstone for a delete: no body, files, reactions or mentions; the seq and reply stay', () => {
    const target = content(1, 'secret', { attachments: [{ id: 'up1' }], reactions: [{ emoji: '👍', user_ids: [2] }], mentions: [3], reply_to: 9 });
    const deleted = applyChange(target, change(5, { type: 'delete', message_id: 1 }));
    assert.equal(deleted.deleted, true);
    assert.equal(deleted.body, null);
    for (const field of ['attachments', 'reactions', 'mentions', 'edited_at'] as const) assert.equal(deleted[field], undefined, field);
    assert.equal(deleted.reply_to, 9);
    assert.equal(deleted.seq, 1);
    // A late edit or reaction does not bring anything back.
    assert.equal(applyChange(deleted, change(6, { type: 'edit', message_id: 1 }, { body: { text: 'again' } })), deleted);
    assert.equal(applyChange(deleted, change(7, { type: 'reaction', message_id: 1, emoji: '👍', on: true })), deleted);
  });

  it('toggles the change sender\'s reaction, in first-used order, dropping an emoji nobody uses', () => {
    let target = content(1, 'hi');
    const react = (seq: number, user: number, emoji: string, on: boolean): void => {
      target = applyChange(target, change(seq, { type: 'reaction', message_id: 1, emoji, on }, { sender_id: user }));
    };
    react(2, 3, '👍', true);
    react(3, 4, '🎉', true);
    react(4, 4, '👍', true);
    react(5, 4, '👍', true); // again: no change
    assert.deepEqual(target.reactions, [{ emoji: '👍', user_ids: [3, 4] }, { emoji: '🎉', user_ids: [4] }]);
    react(6, 4, '🎉', false);
    react(7, 9, '🎉', false); // someone who had not reacted: no change
    assert.deepEqual(target.reactions, [{ emoji: '👍', user_ids: [3, 4] }]);
    react(8, 3, '👍', false);
    react(9, 4, '👍', false);
    assert.equal(target.reactions, undefined, 'no reactions left: the field is gone');
  });

  it('toggled() adds a new emoji last and keeps the others as they are', () => {
    const before = [{ emoji: '👍', user_ids: [1] }];
    assert.deepEqual(toggled(before, '❤️', 2, true), [{ emoji: '👍', user_ids: [1] }, { emoji: '❤️', user_ids: [2] }]);
    assert.deepEqual(toggled(before, '❤️', 2, false), before);
  });

  it('shows an encrypted edit that did not open with its status, not the old body as if nothing happened', () => {
    const target = content(1, 'old', { kind: 'e2e', e2e: { status: 'ok', fingerprint: 'f' } });
    const row = change(5, { type: 'edit', message_id: 1 }, { kind: 'e2e', body: { v: 2 }, e2e: { status: 'undecryptable', fingerprint: 'f' } });
    const updated = applyChange(target, row);
    assert.equal(updated.e2e?.status, 'undecryptable');
    assert.deepEqual(updated.body, { v: 2 });
  });
});

describe('an erased edit (its message deleted for everyone since: body null)', () => {
  const target = content(1, 'old', { kind: 'e2e', e2e: { status: 'ok', fingerprint: 'f' } });
  const erased = change(5, { type: 'edit', message_id: 1 }, { kind: 'e2e', body: null });
  // What opening a row without an envelope comes to (message-opener.ts): a forgery status.
  const opened: ClientMessage[] = [];
  const e2e = {
    open: async (message: ClientMessage) => (opened.push(message), { ...message, e2e: { status: 'bad_signature', fingerprint: undefined } }),
    openNow: (message: ClientMessage) => (opened.push(message), { ...message, e2e: { status: 'bad_signature', fingerprint: undefined } }),
  } as unknown as E2eSession;

  it('is given as it came, not opened (no forgery status), with or without its target at hand', async () => {
    assert.deepEqual(await openEdit(e2e, erased, async () => target), erased);
    assert.deepEqual(await openEdit(e2e, erased, async () => undefined), erased);
    assert.deepEqual(openEditNow(e2e, erased, target), erased);
    assert.deepEqual(openEditNow(e2e, erased, undefined), erased);
    assert.deepEqual(opened, []);
  });

  it('changes nothing: the delete that follows carries the state', () => {
    assert.equal(applyChange(target, erased), target);
    const plain = content(2, 'old');
    assert.equal(applyChange(plain, change(6, { type: 'edit', message_id: 2 }, { body: null })), plain);
    const cache = new MessageCache();
    cache.put(target);
    assert.equal(cache.apply(erased), target);
    assert.equal(cache.apply(change(7, { type: 'delete', message_id: 1 }))?.deleted, true);
  });
});

describe('MessageCache', () => {
  it('applies a change to the copy it holds, and says nothing for one it does not', () => {
    const cache = new MessageCache(10);
    cache.put(content(1, 'a'));
    cache.put(change(2, { type: 'delete', message_id: 1 }));
    assert.equal(cache.size, 1, 'change messages are not kept');
    const updated = cache.apply(change(3, { type: 'edit', message_id: 1 }, { body: { text: 'b' } }));
    assert.deepEqual(updated?.body, { text: 'b' });
    assert.deepEqual(cache.get(1)?.body, { text: 'b' });
    assert.equal(cache.apply(change(4, { type: 'edit', message_id: 99 }, { body: { text: 'x' } })), undefined);
  });

  it('keeps the most recently seen messages when full', () => {
    const cache = new MessageCache(2);
    cache.put(content(1, 'a'));
    cache.put(content(2, 'b'));
    cache.put(content(1, 'a again'));
    cache.put(content(3, 'c'));
    assert.equal(cache.get(2), undefined);
    assert.deepEqual(cache.get(1)?.body, { text: 'a again' });
    assert.ok(cache.get(3));
  });
});

describe('ThreadList and change messages', () => {
  const thread: ThreadJson = {
    id: 1, kind: 'group', title: 'g', peer: null, created_at: 0, last_seq: 3, last_message: content(3, 'last'), role: 'member', member: true,
    left_seq: null, read_seq: 1, unread: 2, muted: false, label: null, member_count: 3, e2e_required: false,
  };

  it('never counts a change as unread; moves last_seq; replaces the last message when that is the one changed', () => {
    const list = new ThreadList();
    list.put(thread);
    const edited = content(3, 'last, edited', { edited_at: 1004 });
    const moved = list.changeArrived(change(4, { type: 'edit', message_id: 3 }, { sender_id: 8 }), 5, edited);
    assert.equal(moved?.last_message, edited);
    assert.equal(list.get(1)?.unread, 2);
    assert.equal(list.get(1)?.last_seq, 4);
    assert.equal(list.changeArrived(change(5, { type: 'reaction', message_id: 2, emoji: '👍', on: true }, { sender_id: 8 }), 5, content(2, 'x')), undefined);
    assert.equal(list.get(1)?.unread, 2, 'still');
    // A content message after them counts as usual.
    list.messageArrived(content(6, 'new', { sender_id: 8 }), 5);
    assert.equal(list.get(1)?.unread, 3);
  });
});

describe('sealed edits', () => {
  it('carry the change message\'s client_msg_id, the new body and the files; anything else is not one', () => {
    const sealed = sealedEdit('edit-1', { text: 'new' }, []);
    assert.deepEqual(readSealedEdit(JSON.parse(JSON.stringify(sealed))), { edit: 'edit-1', body: { text: 'new' }, attachments: [] });
    assert.equal(readSealedEdit({ text: 'plain' }), undefined);
    assert.equal(readSealedEdit({ chatd: 'chatd-edit-v1', body: 'no id' }), undefined);
  });
});

describe('parseMentions', () => {
  const members = [
    { user: { id: 1, username: 'alice', display_name: 'Alice' }, role: 'owner' as const, joined_at: 0, read_seq: 0, delivered_seq: 0 },
    { id: 2, username: 'Bob.Smith' },
    { id: 3, username: 'carol' },
  ];

  it('finds @username of members, without case, once each, in order', () => {
    assert.deepEqual(parseMentions('@carol and @ALICE, then @alice again', members), [3, 1]);
    assert.deepEqual(parseMentions('ping @bob.smith.', members), [2], 'a sentence\'s final dot is not part of the name');
    assert.deepEqual(parseMentions('(@carol)', members), [3]);
  });

  it('ignores non-members, e-mail addresses and a bare @', () => {
    assert.deepEqual(parseMentions('@dave wrote to alice@example.org @ noon', members), []);
    assert.deepEqual(parseMentions('', members), []);
  });

  it('stops at 50, the server\'s limit', () => {
    const many = Array.from({ length: 60 }, (_, i) => ({ id: i + 10, username: `user${i}` }));
    assert.equal(parseMentions(many.map((user) => `@${user.username}`).join(' '), many).length, 50);
  });
});
