import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MessageReceipts } from '../../src/client/browser.js';
import { type HeldReceipts, type Receipt, holdReceipt, receiptsAfter, receiptsWithHeld } from '../../web/src/message-receipts.js';

const MESSAGE_SEQ = 10;
// 1 and 2 have read message 10, 3 has it on a device, 4 and 5 are waiting; 9 (the author) and 7 (joined later) are in no list.
const start: MessageReceipts = { read: [1, 2], delivered: [3], pending: [4, 5] };
const read = (user: number, seq: number): Receipt => ({ user_id: user, kind: 'read', seq });
const delivered = (user: number, seq: number): Receipt => ({ user_id: user, kind: 'delivered', seq });

describe('Message info moves members forward from the receipts of the thread', () => {
  const cases: Array<[string, Receipt, MessageReceipts]> = [
    ['a read of the message moves a waiting member to Read by', read(4, 10), { read: [1, 2, 4], delivered: [3], pending: [5] }],
    ['a read past the message moves a delivered member to Read by', read(3, 12), { read: [1, 2, 3], delivered: [], pending: [4, 5] }],
    ['a delivered receipt moves a waiting member to Delivered to', delivered(5, 11), { read: [1, 2], delivered: [3, 5], pending: [4] }],
    ['a delivered receipt leaves a member who has read it in Read by', delivered(1, 15), start],
    ['a delivered receipt leaves a delivered member where they are', delivered(3, 15), start],
    ['a read receipt leaves a member who has read it where they are', read(2, 15), start],
    ['a receipt short of the message changes nothing', read(4, 9), start],
    ['the author is in no list and is ignored', read(9, 10), start],
    ['a member who joined after the message is ignored', delivered(7, 20), start],
  ];
  for (const [name, receipt, expected] of cases) {
    it(name, () => assert.deepEqual(receiptsAfter(start, receipt, MESSAGE_SEQ), expected));
  }

  it('returns the same lists when nothing changes, so the dialog does not draw again', () => {
    assert.equal(receiptsAfter(start, delivered(1, 15), MESSAGE_SEQ), start);
  });

  it('does not change the lists it was given', () => {
    receiptsAfter(start, read(4, 10), MESSAGE_SEQ);
    assert.deepEqual(start, { read: [1, 2], delivered: [3], pending: [4, 5] });
  });
});

describe('Message info applies the receipts that arrived while the first answer was on its way', () => {
  it('keeps only the highest seq per member and kind', () => {
    const held: HeldReceipts = new Map();
    for (const receipt of [delivered(4, 11), delivered(4, 13), delivered(4, 12), read(4, 10), read(5, 10)]) holdReceipt(held, receipt);
    assert.deepEqual([...held.values()], [delivered(4, 13), read(4, 10), read(5, 10)]);
  });

  it('applies them to the answer, whatever order they came in', () => {
    for (const order of [
      [read(4, 11), delivered(4, 11), delivered(5, 10), read(9, 12)],
      [delivered(5, 10), delivered(4, 11), read(4, 11), read(9, 12)],
    ]) {
      const held: HeldReceipts = new Map();
      for (const receipt of order) holdReceipt(held, receipt);
      assert.deepEqual(receiptsWithHeld(start, held, MESSAGE_SEQ), { read: [1, 2, 4], delivered: [3, 5], pending: [] });
    }
  });

  it('never moves a member backwards from the answer', () => {
    const held: HeldReceipts = new Map();
    holdReceipt(held, delivered(1, 10));
    holdReceipt(held, delivered(3, 10));
    assert.deepEqual(receiptsWithHeld(start, held, MESSAGE_SEQ), start);
  });

  it('gives the answer as it is when nothing was held', () => {
    assert.equal(receiptsWithHeld(start, new Map(), MESSAGE_SEQ), start);
  });
});
