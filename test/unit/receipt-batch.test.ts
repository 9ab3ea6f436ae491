import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type CoalescedReceipt, ReceiptBatch } from '../../src/session/receipt-batch.js';

/** A batch whose turn ends when the test says so. */
function batch() {
  const flushed: CoalescedReceipt[] = [];
  const turns: Array<() => void> = [];
  const receipts = new ReceiptBatch(
    (receipt) => flushed.push(receipt),
    (run) => turns.push(run),
  );
  const endTurn = () => {
    const run = turns.shift();
    assert.ok(run, 'a turn end was scheduled');
    run();
  };
  return { receipts, flushed, turns, endTurn };
}

describe('ReceiptBatch: the receipts of one event-loop turn, coalesced', () => {
  it('publishes nothing before the turn ends, then one receipt per (thread, user, kind) at the highest seq with the union of the audiences', () => {
    const b = batch();
    b.receipts.add(1, 7, 'delivered', 3, [2]);
    b.receipts.add(1, 7, 'delivered', 5, [4]);
    b.receipts.add(1, 7, 'delivered', 4, [2, 9]);
    b.receipts.add(1, 7, 'read', 3, [2, 7]);
    b.receipts.add(2, 7, 'delivered', 1, [2]);
    b.receipts.add(1, 8, 'delivered', 2, [2]);
    assert.deepEqual(b.flushed, []);
    assert.equal(b.turns.length, 1, 'one turn end scheduled for the whole batch');
    b.endTurn();
    assert.deepEqual(b.flushed, [
      { threadId: 1, userId: 7, kind: 'delivered', seq: 5, audience: [2, 4, 9] },
      { threadId: 1, userId: 7, kind: 'read', seq: 3, audience: [2, 7] },
      { threadId: 2, userId: 7, kind: 'delivered', seq: 1, audience: [2] },
      { threadId: 1, userId: 8, kind: 'delivered', seq: 2, audience: [2] },
    ]);
  });

  it('starts afresh after a turn: the next receipt schedules the next turn end, and nothing is published twice', () => {
    const b = batch();
    b.receipts.add(1, 7, 'delivered', 3, [2]);
    b.endTurn();
    assert.equal(b.turns.length, 0);
    b.receipts.add(1, 7, 'delivered', 6, [2]);
    assert.equal(b.turns.length, 1);
    b.endTurn();
    assert.deepEqual(
      b.flushed.map((r) => r.seq),
      [3, 6],
    );
  });

  it('ignores a receipt for nobody, scheduling nothing', () => {
    const b = batch();
    b.receipts.add(1, 7, 'delivered', 3, []);
    assert.equal(b.turns.length, 0);
    assert.deepEqual(b.flushed, []);
  });
});
