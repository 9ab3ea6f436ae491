import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeFrame, messageEventText, messageJson, userJson } from '../../src/protocol/encode.js';
import type { Message, User } from '../../src/services/types.js';

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
      assert.equal(text, encodeFrame({ type: 'message', message: messageJson(message) }));
      assert.equal(text, JSON.stringify({ type: 'message', message: messageJson(message) }));
      assert.deepEqual(JSON.parse(text).message.body, body);
    }
  });
});

describe('the user mapper', () => {
  it('gives the same UserJson to frames and HTTP bodies, whatever else the user carries', () => {
    const user: User & { readonly disabled: boolean } = { id: 7, username: 'alice', displayName: 'Alice Liddell', disabled: false };
    assert.deepEqual(userJson(user), { id: 7, username: 'alice', display_name: 'Alice Liddell' });
  });
});
