import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type HistoryEntry, MAX_KEYS_PER_PART, compareEntries, newGrantId, newestWithin, packParts, parsePart, readIncoming, readOutgoing, withPart,
} from '../../src/client/history-parts.js';

const KEY = Buffer.alloc(32, 7).toString('base64');

function entries(count: number, thread = 3): HistoryEntry[] {
  return Array.from({ length: count }, (_, i) => [thread, i + 1, KEY] as const);
}

describe('history parts: packing', () => {
  it('every part body stays within the byte budget, and no key is lost or repeated', () => {
    const keys = [...entries(1500, 3), ...entries(700, 12345)];
    const parts = packParts(keys, 32_768);
    assert.ok(parts.length >= 4);
    for (const [index, part] of parts.entries()) {
      const body = JSON.stringify({ grant_id: 'x'.repeat(64), part: index + 1, parts: 9_999_999, keys: part });
      assert.ok(body.length <= 32_768, `part ${index + 1} is ${body.length} bytes`);
      assert.ok(part.length <= MAX_KEYS_PER_PART);
    }
    assert.deepEqual(parts.flat(), keys);
  });

  it('packing what is left after a part boundary gives the same parts as the tail of the first packing (a resume)', () => {
    const keys = entries(900);
    const first = packParts(keys, 2048);
    const boundary = first[0]?.[first[0].length - 1] as HistoryEntry;
    const left = keys.filter((entry) => compareEntries(entry, boundary) > 0);
    assert.deepEqual(packParts(left, 2048), first.slice(1));
  });

  it('a small budget makes small parts (one key each at the least); one too small to hold a key is refused', () => {
    assert.deepEqual(packParts(entries(3), 256).map((part) => part.length), [2, 1]);
    assert.deepEqual(packParts(entries(3), 200).map((part) => part.length), [1, 1, 1]);
    assert.throws(() => packParts(entries(1), 150), RangeError);
    assert.deepEqual(packParts([], 32_768), []);
  });

  it('the newest keys (by message id) are kept when a grant is bounded', () => {
    const candidates = [5, 1, 9, 3, 7].map((id) => ({ id, entry: [1, id, KEY] as const }));
    assert.deepEqual(newestWithin(candidates, 3).map((c) => c.id), [9, 7, 5]);
  });

  it('grant ids are fresh and pass the receiver\'s check', () => {
    const a = newGrantId();
    assert.notEqual(a, newGrantId());
    assert.equal(parsePart({ grant_id: a, part: 1, parts: 1, keys: [] }).grant_id, a);
  });
});

describe('history parts: what a receiver accepts', () => {
  const good = { grant_id: 'abcdefgh12', part: 2, parts: 3, keys: [[3, 4, KEY]] };

  it('a well-formed part is read as it came', () => {
    assert.deepEqual(parsePart(good), { grant_id: 'abcdefgh12', part: 2, parts: 3, keys: [[3, 4, KEY]] });
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ['not an object', [1, 2], /not an object/],
    ['null', null, /not an object/],
    ['a short grant id', { ...good, grant_id: 'abc' }, /grant_id/],
    ['a grant id with other characters', { ...good, grant_id: 'abc def ghi' }, /grant_id/],
    ['part 0', { ...good, part: 0 }, /part must/],
    ['part past parts', { ...good, part: 4 }, /part must/],
    ['a fractional part', { ...good, part: 1.5 }, /part must/],
    ['too many parts', { ...good, parts: 100_001 }, /parts must/],
    ['keys not a list', { ...good, keys: {} }, /keys must/],
    ['too many keys', { ...good, keys: entries(MAX_KEYS_PER_PART + 1) }, /keys must/],
    ['an entry of two', { ...good, keys: [[3, 4]] }, /keys\[0\]/],
    ['a seq of 0', { ...good, keys: [[3, 0, KEY]] }, /keys\[0\]/],
    ['a thread id as a string', { ...good, keys: [['3', 4, KEY]] }, /keys\[0\]/],
    ['a key of 31 bytes', { ...good, keys: [[3, 4, Buffer.alloc(31).toString('base64')]] }, /keys\[0\]/],
    ['a key in base64url', { ...good, keys: [[3, 4, Buffer.alloc(32, 0xfb).toString('base64url')]] }, /keys\[0\]/],
    ['a non-canonical key', { ...good, keys: [[3, 4, `${KEY.slice(0, 42)}B=`]] }, /keys\[0\]/],
  ];
  for (const [what, body, reason] of bad) {
    it(`refuses ${what}`, () => {
      assert.throws(() => parsePart(body), reason);
    });
  }
});

describe('history parts: progress records', () => {
  it('an incoming record counts each part once and keeps the sender\'s latest count of parts', () => {
    const part = (n: number, parts: number) => ({ grant_id: 'abcdefgh12', part: n, parts, keys: [] });
    const first = withPart(undefined, 12, part(2, 3), 5);
    const again = withPart(first, 12, part(2, 3), 0);
    const next = withPart(again, 12, part(1, 4), 7);
    assert.deepEqual(next, { direction: 'in', grant_id: 'abcdefgh12', from_device: 12, parts: 4, received: [1, 2], messages: 12 });
    assert.deepEqual(readIncoming({ ...next }), next);
  });

  it('a malformed stored record is not taken for a grant (it is ignored, never half-used)', () => {
    const outgoing = {
      direction: 'out', grant_id: 'abcdefgh12', to_device: 13, threads: [1, 2], all_threads: true, since: 0, until: { 1: 5, 2: 0 },
      next_part: 2, after: [1, 4], parts: 3, messages: 40, sent: 20, truncated: false, state: 'sending',
    };
    assert.deepEqual(readOutgoing(outgoing), outgoing);
    assert.equal(readOutgoing({ ...outgoing, after: [1] }), undefined);
    assert.equal(readOutgoing({ ...outgoing, state: 'paused' }), undefined);
    assert.equal(readOutgoing({ ...outgoing, threads: ['1'] }), undefined);
    assert.equal(readOutgoing({ ...outgoing, all_threads: undefined }), undefined);
    assert.equal(readOutgoing({ ...outgoing, direction: 'in' }), undefined);
    assert.equal(readIncoming(outgoing), undefined);
  });
});
