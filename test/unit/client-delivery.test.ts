import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Connection } from '../../src/client/connection.js';
import { ClientError } from '../../src/client/errors.js';
import { OrderedDelivery } from '../../src/client/ordered-delivery.js';
import { Receiver } from '../../src/client/receiver.js';
import type { MessageJson } from '../../src/protocol/frames.js';

/** Receiver and OrderedDelivery together: a message that cannot be opened for a reason that passes (keys not settled when the connection drops). */

const THREAD = 4;
const message = (seq: number): MessageJson => ({
  id: seq, thread_id: THREAD, seq, sender_id: 9, sender_device_id: 20, client_msg_id: `m${seq}`, kind: 'e2e', body: {}, created_at: 0,
});
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 5));

function fakeConnection(abandoned: string[]): Connection {
  return { abandon: (reason: string) => abandoned.push(reason), request: async () => ({}), welcome: undefined } as unknown as Connection;
}

describe('delivery of a message that cannot be opened yet', () => {
  it('holds it and what follows back, keeps the cursor before it, reconnects, and gives it once the next connection brings it again', async () => {
    const emitted: Array<[number, string | undefined]> = [];
    let failures = 1;
    const delivery = new OrderedDelivery({
      openNow: () => undefined,
      open: async (m) => {
        if (m.seq === 2 && failures-- > 0) throw new ClientError('disconnected', 'the connection dropped while keys settled', true);
        return { ...m, e2e: { status: 'ok', fingerprint: undefined } };
      },
      emit: (m) => emitted.push([m.seq, m.e2e?.status]),
      reportError: () => undefined,
    });
    const saved: number[] = [];
    const receiver = new Receiver({
      deliver: (m) => delivery.deliver(m), discovered: () => undefined, saveCursor: (_thread, seq) => saved.push(seq), catchUpLimit: 200, reportError: () => undefined,
    });
    receiver.load(new Map([[THREAD, 0]]));
    const abandoned: string[] = [];
    receiver.attach(fakeConnection(abandoned), false);
    for (const seq of [1, 2, 3]) receiver.offer(message(seq));
    await settle();
    assert.deepEqual(emitted, [[1, 'ok']], 'nothing after the held message, and no unknown_sender');
    assert.equal(saved.at(-1), 1);
    assert.equal(receiver.cursors().get(THREAD), 1, 'the cursor is where the app is');
    assert.ok(abandoned.length > 0 && abandoned.every((reason) => reason === 'no_reply'), 'the connection is dropped for a new one');
    // A live message of the same connection meanwhile is held back too.
    receiver.offer(message(4));
    await settle();
    assert.deepEqual(emitted, [[1, 'ok']]);
    // The next connection: the catch-up brings 2, 3 and 4 again.
    receiver.detach();
    delivery.resume();
    receiver.attach(fakeConnection(abandoned), false);
    for (const seq of [2, 3, 4]) receiver.offer(message(seq));
    await settle();
    assert.deepEqual(emitted, [[1, 'ok'], [2, 'ok'], [3, 'ok'], [4, 'ok']]);
    assert.equal(saved.at(-1), 4);
  });
});
