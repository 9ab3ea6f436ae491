import assert from 'node:assert/strict';
import { it } from 'node:test';
import { ChatClient } from '../../src/client/node.js';
import { ClientError } from '../../src/client/errors.js';
import type { MessageJson, MessagesFrame } from '../../src/protocol/frames.js';

const message = (seq: number): MessageJson => ({
  id: seq, thread_id: 3, seq, sender_id: 9, sender_device_id: 20, client_msg_id: `m${seq}`, kind: 'e2e', body: { v: 2 }, created_at: 0,
});

it('a history page with one message that cannot be opened (its sender\'s key fetch timed out) still comes, that message marked', async () => {
  const client = new ChatClient({ server: 'ws://127.0.0.1:1', token: 't' });
  const errors: Error[] = [];
  client.on('error', (error) => errors.push(error));
  // The session's open(): seq 2's sender keys could not be fetched on this connection.
  Object.assign(client, {
    e2e: {
      open: async (m: MessageJson) => {
        if (m.seq === 2) throw new ClientError('timeout', 'no reply to keys_get', true);
        return { ...m, e2e: { status: 'ok', fingerprint: undefined } };
      },
    },
  });
  const reply = { type: 'messages', thread_id: 3, messages: [message(1), message(2), message(3)], has_more_before: false, has_more_after: false } as unknown as MessagesFrame;
  const page = await (client as unknown as { page: (r: MessagesFrame) => Promise<{ messages: Array<{ seq: number; e2e?: { status: string } }> }> }).page(reply);
  assert.deepEqual(page.messages.map((m) => [m.seq, m.e2e?.status]), [[1, 'ok'], [2, 'unknown_sender'], [3, 'ok']]);
  assert.deepEqual(errors.map((e) => (e as ClientError).code), ['timeout']);
});
