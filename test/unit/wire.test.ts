import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type MessageFields, encodeFrame, messageEventText, messageJson, userJson } from '../../src/protocol/encode.js';
import type { Message, User } from '../../src/services/types.js';

describe('the message event text', () => {
  it('is what encoding the message object gives, with the stored body spliced in', () => {
    const bodies: unknown[] = [{ text: 'hi' }, { text: 'ünïcødé 😀 "quoted" \\ back\nline' }, [1, 2, { a: null }], 'a string', 42, { nested: { deep: [true, false] } }];
    for (const body of bodies) {
      const message: Message = {
        id: 31,
        threadId: 3,
        seq: 5,
        senderUserId: 7,
        senderDeviceId: 12,
        clientMsgId: 'id "with" quotes',
        kind: 'text',
        bodyJson: JSON.stringify(body),
        createdAt: 1_795_436_940_558,
        attachmentsJson: null,
        replyTo: null, mentionsJson: null, editedAt: null, deletedAt: null, reactionsJson: null, targetId: null, change: null,
      };
      const text = messageEventText(message);
      assert.equal(text, encodeFrame({ type: 'message', message: messageJson(message) }));
      assert.equal(text, JSON.stringify({ type: 'message', message: messageJson(message) }));
      assert.deepEqual(JSON.parse(text).message.body, body);
    }
  });
});

describe('the message event text of a message with attachments', () => {
  it('splices the stored attachments after created_at, as encoding the message object gives; without any the field is absent', () => {
    const attachments = [
      { id: 'AbCdEfGhIjKlMnOpQrStUv', name: 'photo "1".jpg', size: 1234, mime: 'image/jpeg', sha256: 'ab'.repeat(32), width: 640, height: 480, thumbnail: { width: 320, height: 240 } },
      { id: 'second-upload-id-00000', name: 'notes.pdf', size: 99, mime: 'application/pdf', sha256: 'cd'.repeat(32) },
    ];
    const base: Message = { id: 1, threadId: 2, seq: 3, senderUserId: 4, senderDeviceId: 5, clientMsgId: 'c', kind: 'text', bodyJson: 'null', createdAt: 6, attachmentsJson: null, replyTo: null, mentionsJson: null, editedAt: null, deletedAt: null, reactionsJson: null, targetId: null, change: null };
    const carrying: Message = { ...base, attachmentsJson: JSON.stringify(attachments) };
    const text = messageEventText(carrying);
    assert.equal(text, JSON.stringify({ type: 'message', message: messageJson(carrying) }));
    assert.deepEqual(JSON.parse(text).message.attachments, attachments);
    assert.equal(JSON.parse(text).message.body, null);
    assert.equal('attachments' in messageJson(base), false);
    assert.equal(messageEventText(base).includes('attachments'), false);
  });
});

describe('the user mapper', () => {
  it('gives the same UserJson to frames and HTTP bodies, whatever else the user carries', () => {
    const user: User & { readonly disabled: boolean } = { id: 7, username: 'alice', displayName: 'Alice Liddell', disabled: false };
    assert.deepEqual(userJson(user), { id: 7, username: 'alice', display_name: 'Alice Liddell' });
  });
});

describe('the message event text of a changed message (protocol 3)', () => {
  const base: MessageFields = { id: 31, threadId: 3, seq: 5, senderUserId: 7, senderDeviceId: 12, clientMsgId: 'c', kind: 'text', bodyJson: '{"text":"hi"}', createdAt: 6, attachmentsJson: null };
  const same = (message: MessageFields) => {
    const text = messageEventText(message);
    assert.equal(text, JSON.stringify({ type: 'message', message: messageJson(message) }));
    return JSON.parse(text).message;
  };

  it('leaves every new field out of a message that has none', () => {
    assert.deepEqual(Object.keys(same(base)), ['id', 'thread_id', 'seq', 'sender_id', 'sender_device_id', 'client_msg_id', 'kind', 'body', 'created_at']);
  });

  it('carries reply_to, mentions, edited_at and reactions after attachments, in MessageJson order', () => {
    const reactions = [{ emoji: '👍', user_ids: [3, 7] }, { emoji: '🏳️‍🌈', user_ids: [9] }];
    const message = same({ ...base, attachmentsJson: '[{"id":"u1"}]', replyTo: 30, mentionsJson: '[9,3]', editedAt: 77, reactionsJson: JSON.stringify(reactions) });
    assert.deepEqual(Object.keys(message).slice(9), ['attachments', 'reply_to', 'mentions', 'edited_at', 'reactions']);
    assert.equal(message.reply_to, 30);
    assert.deepEqual(message.mentions, [9, 3]);
    assert.equal(message.edited_at, 77);
    assert.deepEqual(message.reactions, reactions);
  });

  it('shows a message deleted for everyone as deleted with a null body, whatever the row still holds', () => {
    const message = same({ ...base, attachmentsJson: '[{"id":"u1"}]', mentionsJson: '[9]', reactionsJson: '[{"emoji":"👍","user_ids":[3]}]', deletedAt: 80, replyTo: 30 });
    assert.equal(message.deleted, true);
    assert.equal(message.body, null);
    assert.equal(message.reply_to, 30, 'a deleted reply is still a reply');
    for (const gone of ['attachments', 'mentions', 'reactions']) assert.equal(gone in message, false, gone);
  });

  it('gives a change message its change with the target id', () => {
    assert.deepEqual(same({ ...base, targetId: 20, change: { type: 'edit' }, mentionsJson: '[4]' }).change, { type: 'edit', message_id: 20 });
    assert.deepEqual(same({ ...base, bodyJson: 'null', targetId: 20, change: { type: 'delete' } }).change, { type: 'delete', message_id: 20 });
    assert.deepEqual(same({ ...base, bodyJson: 'null', targetId: 20, change: { type: 'reaction', emoji: '👍', on: false } }).change, {
      type: 'reaction',
      message_id: 20,
      emoji: '👍',
      on: false,
    });
  });
});
