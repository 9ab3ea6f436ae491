import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { Connection } from '../../src/client/connection.js';
import { Receiver } from '../../src/client/receiver.js';
import type { RequestJson } from '../../src/client/requests.js';
import type { MessageJson } from '../../src/protocol/frames.js';

const message = (seq: number, change?: MessageJson['change']): MessageJson => ({
  id: 100 + seq, thread_id: 4, seq, sender_id: 9, sender_device_id: 20, client_msg_id: `m${seq}`, kind: 'text', body: change ? null : { text: `${seq}` }, created_at: 0,
  ...(change ? { change } : {}),
});

it('fills a gap with sync for the one thread on a protocol 3 server, so the change messages history leaves out are not skipped', { timeout: 5000 }, async () => {
  const requests: RequestJson[] = [];
  const delivered: number[] = [];
  let filled: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    filled = resolve;
  });
  const connection = {
    welcome: { protocol: 3, limits: { max_frame_bytes: 65_536, history_page_max: 200 } },
    abandon: () => assert.fail('the gap was not filled'),
    request: async (request: RequestJson) => {
      requests.push(request);
      if (request.type === 'delivered') return { type: 'delivered' };
      assert.equal(request.type, 'sync', 'no history request: it would skip seq 2, a change message');
      const cursor = request.cursors.find((c) => c.thread_id === 4)?.seq ?? 0;
      // The server's sync brings every seq after the cursor, the change message included.
      const messages = cursor === 1 ? [message(2, { type: 'reaction', message_id: 101, emoji: '👍', on: true }), message(3)] : [];
      return { type: 'sync', threads: [{ thread_id: 4, last_seq: 3, messages, has_more: false }] };
    },
  } as unknown as Connection;
  const receiver = new Receiver({
    deliver: (m) => {
      delivered.push(m.seq);
      if (m.seq === 3) filled();
    },
    discovered: () => undefined,
    saveCursor: () => undefined,
    catchUpLimit: 200,
    reportError: (error) => assert.fail(String(error)),
    heldBack: () => undefined,
  });
  receiver.load(new Map([[4, 0]]));
  receiver.attach(connection, false);
  receiver.offer(message(1));
  await receiver.catchUp(connection, []);
  receiver.offer(message(3)); // live, above a gap: seq 2 was a change message that did not reach this connection
  await done;
  assert.deepEqual(delivered, [1, 2, 3]);
  assert.deepEqual(requests.filter((r) => r.type === 'sync').at(-1), { type: 'sync', cursors: [{ thread_id: 4, seq: 1 }] });
});
