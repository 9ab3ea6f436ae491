import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toggleReaction } from '../../src/storage/ports/reactions.js';
import { NOTHING_UNCOUNTED, unreadCount, unreadRange } from '../../src/storage/ports/visibility.js';

describe('toggleReaction', () => {
  const json = (value: unknown) => JSON.stringify(value);
  const cases: Array<[string, string | null, number, string, boolean, ReturnType<typeof toggleReaction>]> = [
    ['the first reaction', null, 3, '👍', true, { kind: 'changed', json: json([{ emoji: '👍', user_ids: [3] }]) }],
    ['another user joins an emoji, last', json([{ emoji: '👍', user_ids: [3] }]), 7, '👍', true, { kind: 'changed', json: json([{ emoji: '👍', user_ids: [3, 7] }]) }],
    ['a new emoji goes last', json([{ emoji: '👍', user_ids: [3] }]), 3, '🎉', true, { kind: 'changed', json: json([{ emoji: '👍', user_ids: [3] }, { emoji: '🎉', user_ids: [3] }]) }],
    ['on when already on', json([{ emoji: '👍', user_ids: [3] }]), 3, '👍', true, { kind: 'unchanged' }],
    ['off when not on', json([{ emoji: '👍', user_ids: [3] }]), 7, '👍', false, { kind: 'unchanged' }],
    ['off of an emoji nobody used', null, 7, '👍', false, { kind: 'unchanged' }],
    ['off leaves the others in order', json([{ emoji: '👍', user_ids: [3, 7, 9] }]), 7, '👍', false, { kind: 'changed', json: json([{ emoji: '👍', user_ids: [3, 9] }]) }],
    ['the last one off removes the emoji', json([{ emoji: '👍', user_ids: [3] }, { emoji: '🎉', user_ids: [7] }]), 3, '👍', false, { kind: 'changed', json: json([{ emoji: '🎉', user_ids: [7] }]) }],
    ['no reaction left is null', json([{ emoji: '👍', user_ids: [3] }]), 3, '👍', false, { kind: 'changed', json: null }],
    ['a third emoji over a limit of 2', json([{ emoji: 'a', user_ids: [3] }, { emoji: 'b', user_ids: [3, 7] }]), 3, 'c', true, { kind: 'too_many' }],
    ["someone else's emoji do not count against the limit", json([{ emoji: 'a', user_ids: [7] }, { emoji: 'b', user_ids: [7] }]), 3, 'c', true, { kind: 'changed', json: json([{ emoji: 'a', user_ids: [7] }, { emoji: 'b', user_ids: [7] }, { emoji: 'c', user_ids: [3] }]) }],
  ];
  for (const [name, before, userId, emoji, on, expected] of cases) {
    it(name, () => assert.deepEqual(toggleReaction(before, userId, emoji, on, 2), expected));
  }
});

describe('unreadCount leaves change rows out', () => {
  // (start, end] = (max(read, joined), left or last]; uncounted at each end.
  const cases: Array<[string, { joinedSeq: number; leftSeq: number | null; readSeq: number }, number, { atStart: number; atEnd: number }, number]> = [
    ['no change rows', { joinedSeq: 0, leftSeq: null, readSeq: 2 }, 10, NOTHING_UNCOUNTED, 8],
    ['change rows after the cursor', { joinedSeq: 0, leftSeq: null, readSeq: 2 }, 10, { atStart: 1, atEnd: 4 }, 5],
    ['every row after the cursor a change', { joinedSeq: 0, leftSeq: null, readSeq: 7 }, 10, { atStart: 2, atEnd: 5 }, 0],
    ['from where the member joined', { joinedSeq: 5, leftSeq: null, readSeq: 0 }, 10, { atStart: 3, atEnd: 4 }, 4],
    ['up to where the member left', { joinedSeq: 0, leftSeq: 6, readSeq: 1 }, 10, { atStart: 0, atEnd: 2 }, 3],
    ['read past everything', { joinedSeq: 0, leftSeq: null, readSeq: 10 }, 10, { atStart: 4, atEnd: 4 }, 0],
  ];
  for (const [name, member, lastSeq, uncounted, expected] of cases) {
    it(name, () => assert.equal(unreadCount(member, lastSeq, uncounted), expected));
  }

  it('names the range whose ends the engines look up', () => {
    assert.deepEqual(unreadRange({ joinedSeq: 5, leftSeq: null, readSeq: 3 }, 10), { start: 5, end: 10 });
    assert.deepEqual(unreadRange({ joinedSeq: 0, leftSeq: 6, readSeq: 3 }, 10), { start: 3, end: 6 });
  });
});
