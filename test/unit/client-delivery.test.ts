import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Connection } from '../../src/client/connection.js';
import { ClientError } from '../../src/client/errors.js';
import { OrderedDelivery } from '../../src/client/ordered-delivery.js';
import { Receiver } from '../../src/client/receiver.js';
import type { MessageJson } from '../../src/protocol/frames.js';

/** Receiver and OrderedDelivery together: a message that cannot be opened for a reason that passes (keys not settled when the connection drops). */

const THREAD = 4;
const OTHER = 5;
const message = (seq: number, threadId = THREAD): MessageJson => ({
  id: seq + threadId * 1000, thread_id: threadId, seq, sender_id: 9, sender_device_id: 20, client_msg_id: `m${threadId}-${seq}`, kind: 'e2e', body: {}, created_at: 0,
});

/** Resolves `until(check)` as soon as a callback that calls `poke()` makes check true (no sleeps). */
function watcher(): { poke: () => void; until: (check: () => boolean, what: string) => Promise<void> } {
  const waiters = new Set<() => void>();
  return {
    poke: () => {
      for (const waiter of [...waiters]) waiter();
    },
    until: (check, what) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`timed out waiting for ${what}`));
        }, 5_000);
        const waiter = (): void => {
          if (!check()) return;
          clearTimeout(timer);
          waiters.delete(waiter);
          resolve();
        };
        waiters.add(waiter);
        waiter();
      }),
  };
}

interface Rig {
  emitted: Array<[number, number, string | undefined]>;
  saved: Array<[number, number]>;
  abandoned: string[];
  heldBack: number;
  receiver: Receiver;
  delivery: OrderedDelivery;
  until: (check: () => boolean, what: string) => Promise<void>;
  reconnect: () => void;
}

function rig(open: (m: MessageJson) => Promise<void>, openNow: (m: MessageJson) => boolean = () => false): Rig {
  const { poke, until } = watcher();
  const r = { emitted: [], saved: [], abandoned: [], heldBack: 0, until } as unknown as Rig;
  const connection = (): Connection =>
    ({
      abandon: (reason: string) => {
        r.abandoned.push(reason);
        poke();
      },
      request: async () => ({}),
      welcome: undefined,
    }) as unknown as Connection;
  const ok = (m: MessageJson) => ({ ...m, e2e: { status: 'ok' as const, fingerprint: undefined } });
  r.delivery = new OrderedDelivery({
    openNow: (m) => (openNow(m) ? ok(m) : undefined),
    open: async (m) => {
      await open(m);
      return ok(m);
    },
    emit: (m) => {
      r.emitted.push([m.thread_id, m.seq, m.e2e?.status]);
      poke();
    },
    reportError: () => undefined,
  });
  r.receiver = new Receiver({
    deliver: (m) => r.delivery.deliver(m),
    discovered: () => undefined,
    saveCursor: (threadId, seq) => {
      r.saved.push([threadId, seq]);
      poke();
    },
    catchUpLimit: 200,
    reportError: () => undefined,
    heldBack: () => {
      r.heldBack++;
    },
  });
  r.receiver.load(new Map([[THREAD, 0], [OTHER, 0]]));
  r.receiver.attach(connection(), false);
  r.reconnect = () => {
    r.receiver.detach();
    r.delivery.resume();
    r.receiver.attach(connection(), false);
  };
  return r;
}

const lastSaved = (r: Rig, threadId: number): number | undefined => r.saved.filter(([id]) => id === threadId).at(-1)?.[1];

describe('delivery of a message that cannot be opened yet', () => {
  it('holds it and what follows back, keeps the cursor before it, reconnects, and gives it once the next connection brings it again', async () => {
    let failures = 1;
    const r = rig(async (m) => {
      if (m.seq === 2 && failures-- > 0) throw new ClientError('disconnected', 'the connection dropped while keys settled', true);
    });
    for (const seq of [1, 2, 3]) r.receiver.offer(message(seq));
    // 2 and 3 are both refused (each drops the connection): by then everything this connection will give is given.
    await r.until(() => r.abandoned.length >= 2, 'the held messages to be refused');
    assert.deepEqual(r.emitted, [[THREAD, 1, 'ok']], 'nothing after the held message, and no unknown_sender');
    assert.equal(lastSaved(r, THREAD), 1);
    assert.equal(r.receiver.cursors().get(THREAD), 1, 'the cursor is where the app is');
    assert.ok(r.abandoned.every((reason) => reason === 'no_reply'), 'the connection is dropped for a new one');
    assert.ok(r.heldBack > 0, 'the client hears that the drop was to redeliver (the backoff is not reset)');
    // A live message of the same connection meanwhile waits too (behind the gap the held ones left).
    r.receiver.offer(message(4));
    assert.deepEqual(r.emitted, [[THREAD, 1, 'ok']]);
    assert.equal(r.receiver.cursors().get(THREAD), 1);
    // The next connection: the catch-up brings 2, 3 and 4 again.
    r.reconnect();
    for (const seq of [2, 3, 4]) r.receiver.offer(message(seq));
    await r.until(() => lastSaved(r, THREAD) === 4, 'the cursor to reach 4');
    assert.deepEqual(r.emitted, [[THREAD, 1, 'ok'], [THREAD, 2, 'ok'], [THREAD, 3, 'ok'], [THREAD, 4, 'ok']]);
  });

  it('gives a message opened at once, ahead of a held one in the same batch, only once', async () => {
    let failures = 1;
    // seq 1 is from a known sender (opens at once); seq 2 needs a key fetch, which times out once.
    const r = rig(
      async (m) => {
        if (m.seq === 2 && failures-- > 0) throw new ClientError('timeout', 'keys_get timed out', true);
      },
      (m) => m.seq !== 2,
    );
    r.receiver.offer(message(2)); // arrives first (a gap): waits in the log
    r.receiver.offer(message(1)); // closes the gap: [1, 2] released as one batch
    await r.until(() => r.abandoned.length >= 1, 'the held message to be refused');
    assert.equal(r.receiver.cursors().get(THREAD), 1, 'the cursor counts the message given at once');
    r.reconnect();
    // The next connection's catch-up starts from the cursor.
    for (const seq of [1, 2]) r.receiver.offer(message(seq));
    await r.until(() => lastSaved(r, THREAD) === 2, 'the cursor to reach 2');
    assert.deepEqual(r.emitted.map(([, seq]) => seq), [1, 2], 'each message once');
  });

  it('holds back only the thread of the held message', async () => {
    const r = rig(async (m) => {
      if (m.thread_id === THREAD) throw new ClientError('timeout', 'keys_get timed out', true);
    }, (m) => m.thread_id === OTHER);
    r.receiver.offer(message(1));
    await r.until(() => r.abandoned.length >= 1, 'the held message to be refused');
    r.receiver.offer(message(1, OTHER));
    r.receiver.offer(message(2, OTHER));
    await r.until(() => lastSaved(r, OTHER) === 2, 'the other thread to be delivered');
    assert.deepEqual(r.emitted, [[OTHER, 1, 'ok'], [OTHER, 2, 'ok']]);
  });

  it('marks a message at once when the server answers the key fetch with an error (no hold, no reconnect)', async () => {
    const r = rig(async () => {
      throw new ClientError('internal', 'the server failed', true);
    });
    r.receiver.offer(message(1));
    r.receiver.offer(message(2));
    await r.until(() => lastSaved(r, THREAD) === 2, 'both messages to be given');
    assert.deepEqual(r.emitted, [[THREAD, 1, 'unknown_sender'], [THREAD, 2, 'unknown_sender']]);
    assert.deepEqual(r.abandoned, []);
  });
});
