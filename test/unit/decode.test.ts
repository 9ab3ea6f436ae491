import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FrameError, decodeClientFrame } from '../../src/protocol/decode.js';

function failure(text: string, max = 1024): FrameError {
  try {
    decodeClientFrame(text, max);
  } catch (error) {
    assert.ok(error instanceof FrameError);
    return error;
  }
  assert.fail(`expected ${text} to be refused`);
}

describe('decodeClientFrame', () => {
  it('decodes the frames it knows', () => {
    assert.deepEqual(decodeClientFrame('{"type":"auth","id":"1","token":"abc"}', 1024), { type: 'auth', id: '1', token: 'abc' });
    assert.deepEqual(decodeClientFrame('{"type":"ping","id":"p"}', 1024), { type: 'ping', id: 'p' });
    assert.deepEqual(decodeClientFrame('{"type":"send","id":"s","thread_id":3,"client_msg_id":"c1","body": {"text" : "hi"}}', 1024), {
      type: 'send',
      id: 's',
      thread_id: 3,
      client_msg_id: 'c1',
      kind: 'text',
      body_json: '{"text":"hi"}',
      attachments: undefined,
      reply_to: undefined,
      mentions: undefined,
    });
    assert.deepEqual(decodeClientFrame('{"type":"history","id":"h","thread_id":3}', 1024), {
      type: 'history',
      id: 'h',
      thread_id: 3,
      anchor: { latest: true },
      limit: 50,
    });
    assert.deepEqual(decodeClientFrame('{"type":"history","id":"h","thread_id":3,"after":4,"changes":true}', 1024), {
      type: 'history',
      id: 'h',
      thread_id: 3,
      anchor: { after: 4, changes: true },
      limit: 50,
    });
  });

  const cases: Array<[string, string, string | null, RegExp]> = [
    ['not JSON', '{nope', null, /not valid JSON/],
    ['not an object', '[1,2]', null, /must be a JSON object/],
    ['no id', '{"type":"ping"}', null, /id must be a string/],
    ['an id that is too long', JSON.stringify({ type: 'ping', id: 'x'.repeat(65) }), null, /id must be a string of 1-64/],
    ['an unknown type', '{"type":"shout","id":"7"}', '7', /unknown frame type "shout"; known: auth, ping/],
    ['a prototype key as type', '{"type":"constructor","id":"7"}', '7', /unknown frame type/],
    ['a missing field', '{"type":"auth","id":"8"}', '8', /token must be a string/],
    ['a missing type', '{"id":"9"}', '9', /type is required; known: auth, ping, send/],
    ['a send without a body', '{"type":"send","id":"s","thread_id":1,"client_msg_id":"c"}', 's', /body is required/],
    ['a history with two anchors', '{"type":"history","id":"h","thread_id":1,"before":5,"after":2}', 'h', /cannot be combined/],
    ['a history asking for changes without after', '{"type":"history","id":"h","thread_id":1,"before":5,"changes":true}', 'h', /changes is only for a page after a seq/],
    ['a history with changes that is not a boolean', '{"type":"history","id":"h","thread_id":1,"after":5,"changes":1}', 'h', /changes/],
    ['a member that is neither id nor name', '{"type":"group_create","id":"g","title":"t","members":[true]}', 'g', /members must hold user ids/],
  ];
  for (const [name, text, id, message] of cases) {
    it(`refuses ${name}, keeping the request id when it could read one`, () => {
      const error = failure(text);
      assert.equal(error.requestId, id);
      assert.match(error.message, message);
    });
  }

  describe('a send with attachments', () => {
    const send = (fields: Record<string, unknown>) => JSON.stringify({ type: 'send', id: 's', thread_id: 1, client_msg_id: 'c', ...fields });

    it('reads the ids in order (other keys of each entry ignored), and an absent or null body as the JSON null', () => {
      const frame = decodeClientFrame(send({ attachments: [{ id: 'a1', name: 'claimed.jpg', size: 1 }, { id: 'b2' }] }), 4096);
      assert.deepEqual(frame, { type: 'send', id: 's', thread_id: 1, client_msg_id: 'c', kind: 'text', body_json: 'null', attachments: ['a1', 'b2'], reply_to: undefined, mentions: undefined });
      assert.equal(decodeClientFrame(send({ body: null, attachments: [{ id: 'a1' }] }), 4096).type === 'send' && 'null', 'null');
      const withText = decodeClientFrame(send({ body: { text: 'look' }, attachments: [{ id: 'a1' }] }), 4096);
      assert.ok(withText.type === 'send');
      assert.equal(withText.body_json, '{"text":"look"}');
    });

    const refused: Array<[string, unknown, RegExp]> = [
      ['a non-array', { id: 'a1' }, /^attachments must be a list of \{"id": "<upload id>"\}$/],
      ['an empty list', [], /^attachments must hold at least one attachment \(omit the field for none\)$/],
      ['more than ten', Array.from({ length: 11 }, (_, n) => ({ id: `u${n}` })), /^attachments must hold at most 10 attachments, got 11$/],
      ['an entry that is a bare string', ['a1'], /^attachments\[0\] must be \{"id": "<upload id>"\} with id a string of 1-64 characters$/],
      ['a number id', [{ id: 'a1' }, { id: 7 }], /^attachments\[1\] must be \{"id": "<upload id>"\}/],
      ['an empty id', [{ id: '' }], /^attachments\[0\] must be/],
      ['an id over 64 characters', [{ id: 'x'.repeat(65) }], /^attachments\[0\] must be .* 1-64 characters$/],
      ['a repeated id', [{ id: 'a1' }, { id: 'b2' }, { id: 'a1' }], /^attachments\[2\] repeats id "a1": each attachment once$/],
    ];
    for (const [name, attachments, message] of refused) {
      it(`refuses ${name} as invalid_frame naming the field`, () => {
        const error = failure(send({ body: { text: 'x' }, attachments }), 4096);
        assert.equal(error.code, 'invalid_frame');
        assert.equal(error.field, 'attachments');
        assert.equal(error.requestId, 's');
        assert.match(error.message, message);
      });
    }

    it('still requires a body without attachments, and says attachments would lift that', () => {
      assert.match(failure(send({})).message, /body is required .* unless the message carries attachments/);
    });
  });

  // One length rule with the services (thread-rules.ts checkTitle): code points, so an emoji (two UTF-16 units) is one character.
  for (const [type, extra] of [
    ['group_create', {}],
    ['group_rename', { thread_id: 4 }],
  ] as const) {
    it(`counts a ${type} title in code points: 60 or 100 emoji pass, 101 characters are refused naming the field and the limit`, () => {
      for (const title of ['😀'.repeat(60), '😀'.repeat(100)]) {
        const frame = decodeClientFrame(JSON.stringify({ type, id: 't', ...extra, title }), 4096);
        assert.equal('title' in frame && frame.title, title);
      }
      for (const title of ['😀'.repeat(101), 'a'.repeat(101), `${'a'.repeat(100)}😀`]) {
        const error = failure(JSON.stringify({ type, id: 't', ...extra, title }), 4096);
        assert.equal(error.code, 'invalid_field');
        assert.equal(error.field, 'title');
        assert.equal(error.message, 'title must be a string of 1-100 characters');
      }
    });
  }

  it('counts the request id and usernames in code points too', () => {
    assert.equal(decodeClientFrame(JSON.stringify({ type: 'ping', id: '😀'.repeat(64) }), 4096).id, '😀'.repeat(64));
    assert.equal(failure(JSON.stringify({ type: 'ping', id: '😀'.repeat(65) }), 4096).field, 'id');
    assert.deepEqual(decodeClientFrame(JSON.stringify({ type: 'direct_open', id: 'd', username: '😀'.repeat(64) }), 4096), {
      type: 'direct_open',
      id: 'd',
      user: { username: '😀'.repeat(64) },
    });
    assert.match(failure(JSON.stringify({ type: 'group_create', id: 'g', title: 't', members: ['😀'.repeat(65)] }), 4096).message, /members must hold/);
  });

  it('reads an optional field given as null as left out, in every frame that has one (but a label: null clears it)', () => {
    const decode = (frame: Record<string, unknown>) => decodeClientFrame(JSON.stringify({ id: 'n', ...frame }), 4096);
    const withNulls: Array<Record<string, unknown>> = [
      { type: 'send', thread_id: 1, client_msg_id: 'c', body: 'x', kind: null, reply_to: null, mentions: null, attachments: null },
      { type: 'edit', message_id: 1, client_msg_id: 'c', body: 'x', kind: null, mentions: null },
      { type: 'delete', message_id: 1, for: 'me', client_msg_id: null },
      { type: 'react', message_id: 1, emoji: 'x', client_msg_id: 'c', on: null },
      { type: 'hidden', after: null, limit: null },
      { type: 'search', query: 'q', thread_id: null, sender_id: null, after: null, before: null, limit: null },
      { type: 'history', thread_id: 1, before: null, after: null, around: null, changes: null, limit: null },
      { type: 'history', thread_id: 1, before: null, after: 5, around: null },
      { type: 'jump', message_id: 1, limit: null },
      { type: 'sync', cursors: null },
      { type: 'group_create', title: 't', members: null, e2e_required: null },
      { type: 'direct_open', user_id: null, username: 'bob' },
      { type: 'group_remove', thread_id: 1, user_id: null, username: 'bob' },
      { type: 'group_role', thread_id: 1, user_id: 2, username: null, role: 'admin' },
      { type: 'contact_add', user_id: null, username: 'bob' },
      { type: 'thread_settings', thread_id: 1, muted: null },
      { type: 'users_search', query: 'a', limit: null },
      { type: 'push_register', platform: 'fcm', token: 't', topic: null },
      { type: 'keys_publish', enc_key: 'e', sign_key: 's', counter: 1, signature: 'g', account_signature: null },
      { type: 'account_publish', account_key: 'a', signature: 's', reset: null, password: null },
      { type: 'keys_get', user_ids: null },
      { type: 'device_messages', after: null, limit: null },
    ];
    for (const frame of withNulls) {
      const leftOut = Object.fromEntries(Object.entries(frame).filter(([, value]) => value !== null));
      assert.deepEqual(decode(frame), decode(leftOut), JSON.stringify(frame));
    }
    // A required field is still required when null.
    assert.throws(() => decode({ type: 'delete', message_id: 1, for: null }), /for is required/);
    const cleared = decode({ type: 'thread_settings', thread_id: 1, label: null });
    assert.ok(cleared.type === 'thread_settings');
    assert.equal(cleared.label, null);
  });

  it('refuses a frame over the size limit before parsing it', () => {
    const error = failure(JSON.stringify({ type: 'ping', id: '1', pad: 'x'.repeat(100) }), 64);
    assert.equal(error.code, 'payload_too_large');
    assert.match(error.message, /larger than the limit of 64 bytes/);
    assert.equal(error.requestId, '1', 'answered by id, so the client knows which request failed');
  });
  describe('message changes (protocol 3)', () => {
    const decode = (frame: Record<string, unknown>) => decodeClientFrame(JSON.stringify({ id: 'x', ...frame }), 4096);

    it('reads reply_to and mentions on a send (an empty mentions list is none)', () => {
      const frame = decode({ type: 'send', thread_id: 1, client_msg_id: 'c', body: { text: '@bob hi' }, reply_to: 40, mentions: [7, 3] });
      assert.ok(frame.type === 'send');
      assert.equal(frame.reply_to, 40);
      assert.deepEqual(frame.mentions, [7, 3]);
      const plain = decode({ type: 'send', thread_id: 1, client_msg_id: 'c', body: 'x', reply_to: null, mentions: [] });
      assert.ok(plain.type === 'send');
      assert.equal(plain.reply_to, undefined);
      assert.equal(plain.mentions, undefined);
    });

    it('decodes edit, delete, react and hidden with their defaults', () => {
      assert.deepEqual(decode({ type: 'edit', message_id: 9, client_msg_id: 'e1', body: { text: 'fixed' }, mentions: [2] }), {
        type: 'edit',
        id: 'x',
        message_id: 9,
        client_msg_id: 'e1',
        kind: 'text',
        body_json: '{"text":"fixed"}',
        mentions: [2],
      });
      assert.deepEqual(decode({ type: 'delete', message_id: 9, for: 'everyone', client_msg_id: 'd1' }), {
        type: 'delete',
        id: 'x',
        message_id: 9,
        for: 'everyone',
        client_msg_id: 'd1',
      });
      assert.deepEqual(decode({ type: 'delete', message_id: 9, for: 'me' }), { type: 'delete', id: 'x', message_id: 9, for: 'me', client_msg_id: undefined });
      assert.deepEqual(decode({ type: 'react', message_id: 9, emoji: '👍', client_msg_id: 'r1' }), {
        type: 'react',
        id: 'x',
        message_id: 9,
        emoji: '👍',
        on: true,
        client_msg_id: 'r1',
      });
      assert.equal((decode({ type: 'react', message_id: 9, emoji: '👍', on: false, client_msg_id: 'r1' }) as { on: boolean }).on, false);
      assert.deepEqual(decode({ type: 'hidden' }), { type: 'hidden', id: 'x', after: 0, limit: 500 });
      assert.deepEqual(decode({ type: 'hidden', after: 12, limit: 20 }), { type: 'hidden', id: 'x', after: 12, limit: 20 });
    });

    const refused: Array<[string, Record<string, unknown>, string, RegExp]> = [
      ['a reply_to that is not an id', { type: 'send', thread_id: 1, client_msg_id: 'c', body: 1, reply_to: 'm5' }, 'reply_to', /reply_to must be a positive integer/],
      ['mentions that are not a list', { type: 'send', thread_id: 1, client_msg_id: 'c', body: 1, mentions: 7 }, 'mentions', /mentions must be a list of at most 50/],
      ['more than 50 mentions', { type: 'send', thread_id: 1, client_msg_id: 'c', body: 1, mentions: Array.from({ length: 51 }, (_, n) => n + 1) }, 'mentions', /at most 50/],
      ['a user mentioned twice', { type: 'edit', message_id: 1, client_msg_id: 'c', body: 1, mentions: [4, 4] }, 'mentions', /must not name a user twice/],
      ['a mention that is not a user id', { type: 'edit', message_id: 1, client_msg_id: 'c', body: 1, mentions: ['bob'] }, 'mentions', /positive integers/],
      ['an edit without a body', { type: 'edit', message_id: 1, client_msg_id: 'c' }, 'body', /body is required/],
      ['an edit without message_id', { type: 'edit', client_msg_id: 'c', body: 1 }, 'message_id', /message_id must be a positive integer/],
      ['an edit of kind system', { type: 'edit', message_id: 1, client_msg_id: 'c', body: 1, kind: 'system' }, 'kind', /kind must be one of text, e2e/],
      ['a delete without for', { type: 'delete', message_id: 1, client_msg_id: 'c' }, 'for', /for is required \("everyone" or "me"\)/],
      ['a delete for everyone without client_msg_id', { type: 'delete', message_id: 1, for: 'everyone' }, 'client_msg_id', /client_msg_id must be a string/],
      ['a reaction without emoji', { type: 'react', message_id: 1, client_msg_id: 'c' }, 'emoji', /emoji must be a string of 1-32/],
      ['a reaction with a very long emoji text', { type: 'react', message_id: 1, client_msg_id: 'c', emoji: '👍'.repeat(33) }, 'emoji', /emoji must be a string of 1-32/],
      ['a reaction with on not a boolean', { type: 'react', message_id: 1, client_msg_id: 'c', emoji: '👍', on: 'yes' }, 'on', /on must be true or false/],
      ['a hidden cursor below 0', { type: 'hidden', after: -1 }, 'after', /after must be an integer of 0 or more/],
    ];
    for (const [name, frame, field, message] of refused) {
      it(`refuses ${name} as invalid_field naming ${field}`, () => {
        const error = failure(JSON.stringify({ id: 'x', ...frame }), 4096);
        assert.equal(error.code, 'invalid_field');
        assert.equal(error.field, field);
        assert.equal(error.requestId, 'x');
        assert.match(error.message, message);
      });
    }
  });
});
