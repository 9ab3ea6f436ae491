import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ThreadLog } from '../../src/client/thread-log.js';
import type { MessageJson } from '../../src/protocol/frames.js';

const message = (seq: number): MessageJson => ({
  id: 100 + seq, thread_id: 1, seq, sender_id: 1, sender_device_id: 1, client_msg_id: `c${seq}`, kind: 'text', body: { text: `m${seq}` }, created_at: seq,
});
const seqs = (messages: readonly MessageJson[]): number[] => messages.map((m) => m.seq);

/** Offers each seq in turn; returns what was released after each offer. */
function offerAll(log: ThreadLog, arrivals: number[]): number[][] {
  return arrivals.map((seq) => seqs(log.offer(message(seq))));
}

describe('ThreadLog (client-side order and dedupe per thread)', () => {
  const cases: Array<{ name: string; start: number; arrivals: number[]; released: number[][]; cursor: number; gap: boolean }> = [
    { name: 'in-order arrivals are released one by one', start: 0, arrivals: [1, 2, 3], released: [[1], [2], [3]], cursor: 3, gap: false },
    { name: 'duplicates are released once', start: 0, arrivals: [1, 1, 2, 1, 2], released: [[1], [], [2], [], []], cursor: 2, gap: false },
    { name: 'messages at or below the cursor are old', start: 5, arrivals: [3, 5, 6], released: [[], [], [6]], cursor: 6, gap: false },
    { name: 'a message after a gap is held until the gap fills', start: 0, arrivals: [1, 3, 4, 2], released: [[1], [], [], [2, 3, 4]], cursor: 4, gap: false },
    { name: 'an unfilled gap stays open', start: 0, arrivals: [1, 3], released: [[1], []], cursor: 1, gap: true },
    { name: 'a held message offered twice is held once', start: 0, arrivals: [2, 2, 1], released: [[], [], [1, 2]], cursor: 2, gap: false },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const log = new ThreadLog(c.start);
      assert.deepEqual(offerAll(log, c.arrivals), c.released);
      assert.equal(log.cursor, c.cursor);
      assert.equal(log.hasGap, c.gap);
    });
  }

  it('an authoritative page fills a gap and releases what was held above it', () => {
    const log = new ThreadLog(2);
    offerAll(log, [6]);
    assert.deepEqual(seqs(log.applyPage(2, [message(3), message(4), message(5), message(6), message(7)])), [3, 4, 5, 6, 7]);
    assert.equal(log.cursor, 7);
    assert.equal(log.hasGap, false);
  });

  it('seqs missing from an authoritative page are ones the device may not see, and are skipped', () => {
    const log = new ThreadLog(0);
    assert.deepEqual(seqs(log.applyPage(0, [message(40), message(41)])), [40, 41]);
    assert.equal(log.cursor, 41);
  });

  it('a page that stops short of a held message leaves the gap open above it', () => {
    const log = new ThreadLog(0);
    offerAll(log, [9]);
    assert.deepEqual(seqs(log.applyPage(0, [message(1), message(2)])), [1, 2]);
    assert.equal(log.cursor, 2);
    assert.equal(log.firstHeld, 9);
  });

  it('a page that overlaps what live events already released gives only the new part', () => {
    const log = new ThreadLog(0);
    offerAll(log, [1, 2, 3]);
    assert.deepEqual(seqs(log.applyPage(0, [message(1), message(2), message(3), message(4)])), [4]);
  });

  it('skipping a gap the server says is empty releases the held run', () => {
    const log = new ThreadLog(1);
    offerAll(log, [5, 6, 8]);
    assert.deepEqual(seqs(log.skipGap()), [5, 6]);
    assert.equal(log.cursor, 6);
    assert.equal(log.firstHeld, 8);
  });
});
