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
    });
    assert.deepEqual(decodeClientFrame('{"type":"history","id":"h","thread_id":3}', 1024), {
      type: 'history',
      id: 'h',
      thread_id: 3,
      anchor: { latest: true },
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
    ['a member that is neither id nor name', '{"type":"group_create","id":"g","title":"t","members":[true]}', 'g', /members must hold user ids/],
  ];
  for (const [name, text, id, message] of cases) {
    it(`refuses ${name}, keeping the request id when it could read one`, () => {
      const error = failure(text);
      assert.equal(error.requestId, id);
      assert.match(error.message, message);
    });
  }

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

  it('refuses a frame over the size limit before parsing it', () => {
    const error = failure(JSON.stringify({ type: 'ping', id: '1', pad: 'x'.repeat(100) }), 64);
    assert.equal(error.code, 'payload_too_large');
    assert.match(error.message, /larger than the limit of 64 bytes/);
    assert.equal(error.requestId, '1', 'answered by id, so the client knows which request failed');
  });
});
