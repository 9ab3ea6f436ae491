import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Message } from '../../src/services/types.js';
import { messageEventText, messageJson } from '../../src/session/wire.js';

describe('the message event text', () => {
  it('is what encoding the message object gives, with the stored body spliced in', () => {
    const bodies: unknown[] = [{ text: 'hi' }, { text: 'ünïcødé 😀 "quoted" \\ back\nline' }, [1, 2, { a: null }], 'a string', 42, { nested: { deep: [true, false] } }];
    for (const body of bodies) {
      const message: Message = {
        id: 31,
        threadId: 3,
        seq: 5,
        senderUserId: 7,
        senderDeviceId: 12,
        clientMsgId: 'id "with" quotes',
        kind: 'text',
        bodyJson: JSON.stringify(body),
        createdAt: 1_795_436_940_558,
      };
      const text = messageEventText(message);
      assert.equal(text, JSON.stringify({ type: 'message', message: messageJson(message) }));
      assert.deepEqual(JSON.parse(text).message.body, body);
    }
  });
});
