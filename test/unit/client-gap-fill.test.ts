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

it('fills a gap with history asking for change messages on a protocol 3 server, so they are not skipped as invisible seqs', { timeout: 5000 }, async () => {
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
      if (request.type === 'sync') return { type: 'sync', threads: [] };
      assert.equal(request.type, 'history');
      assert.equal(request.changes, true, 'without changes: true the page would skip seq 2, a change message');
      // The server's page brings every seq after the cursor, the change message included.
      const messages = request.after === 1 ? [message(2, { type: 'reaction', message_id: 101, emoji: '👍', on: true }), message(3)] : [];
      return { type: 'messages', thread_id: 4, messages, has_more_before: true, has_more_after: false };
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
  assert.deepEqual(requests.filter((r) => r.type === 'history'), [{ type: 'history', thread_id: 4, after: 1, limit: 200, changes: true }]);
});
