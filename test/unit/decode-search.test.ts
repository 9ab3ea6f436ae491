import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FrameError, decodeClientFrame } from '../../src/protocol/decode.js';

const decode = (frame: Record<string, unknown>) => decodeClientFrame(JSON.stringify({ type: 'search', id: 'q', ...frame }), 65_536);

function refusedField(frame: Record<string, unknown>): string | undefined {
  try {
    decode(frame);
  } catch (error) {
    assert.ok(error instanceof FrameError);
    assert.equal(error.code, 'invalid_field');
    return error.field;
  }
  return undefined;
}

describe('decoding search', () => {
  it('reads the query, the filters, the cursor and the limit (20 by default)', () => {
    assert.deepEqual(decode({ query: 'hi' }), {
      type: 'search',
      id: 'q',
      query: 'hi',
      thread_id: undefined,
      sender_id: undefined,
      after: undefined,
      before: undefined,
      cursor: undefined,
      limit: 20,
    });
    assert.deepEqual(decode({ query: 'hi', thread_id: 3, sender_id: 4, after: 0, before: 10, cursor: 'bzIw', limit: 50 }), {
      type: 'search',
      id: 'q',
      query: 'hi',
      thread_id: 3,
      sender_id: 4,
      after: 0,
      before: 10,
      cursor: 'bzIw',
      limit: 50,
    });
    assert.equal(decode({ query: '😀'.repeat(200) }).type, 'search', '200 characters, not 200 UTF-16 units');
  });

  it('names the bad field', () => {
    assert.equal(refusedField({}), 'query');
    assert.equal(refusedField({ query: '' }), 'query');
    assert.equal(refusedField({ query: 'x'.repeat(201) }), 'query');
    assert.equal(refusedField({ query: 'x', limit: 0 }), 'limit');
    assert.equal(refusedField({ query: 'x', limit: 51 }), 'limit');
    assert.equal(refusedField({ query: 'x', limit: 1.5 }), 'limit');
    assert.equal(refusedField({ query: 'x', cursor: 7 }), 'cursor');
    assert.equal(refusedField({ query: 'x', cursor: 'c'.repeat(65) }), 'cursor');
    assert.equal(refusedField({ query: 'x', thread_id: 0 }), 'thread_id');
    assert.equal(refusedField({ query: 'x', sender_id: 'me' }), 'sender_id');
    assert.equal(refusedField({ query: 'x', before: -1 }), 'before');
  });
});
