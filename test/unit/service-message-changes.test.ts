import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChatError } from '../../src/errors.js';
import { type MessageChangeDeps, MessageChangeService, inWords } from '../../src/services/message-changes.js';
import type { Principal } from '../../src/services/types.js';
import type { AppendMessageInput, AppendOutcome, AppendRefusal, HideOutcome, StoredMessage } from '../../src/storage/ports/messaging.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { RecordingFanout } from '../helpers/recording-fanout.js';

/**
 * MessageChangeService's own rules, over a storage that answers what each case
 * needs: the engines' units are proved by the storage contract suite, the
 * whole path by test/integration/message-changes.test.ts. Here: which error
 * each refusal becomes, what is checked before the unit, and what is
 * announced to whom.
 */

const principal: Principal = { user: { id: 7, username: 'alice', displayName: 'Alice' }, deviceId: 12 };

const stored: StoredMessage = {
  id: 40,
  threadId: 3,
  seq: 9,
  senderUserId: 7,
  senderDeviceId: 12,
  clientMsgId: 'c',
  kind: 'text',
  bodyJson: '{"text":"new"}',
  createdAt: 1,
  attachmentsJson: null,
  replyTo: null,
  mentionsJson: null,
  editedAt: null,
  deletedAt: null,
  reactionsJson: null,
  targetId: 31,
  change: { type: 'edit' },
};

function world(options: { outcome?: AppendOutcome; hide?: HideOutcome; visible?: boolean } = {}) {
  const appended: AppendMessageInput[] = [];
  const spent: number[] = [];
  const fanout = new RecordingFanout();
  const deps: MessageChangeDeps = {
    storage: {
      appendMessage: async (input) => {
        appended.push(input);
        return options.outcome ?? { kind: 'stored', message: stored };
      },
      hideMessage: async () => options.hide ?? { kind: 'hidden', hidden: { id: 5, threadId: 3, messageId: 31 }, already: false },
      hiddenAfter: async (_userId, after, limit) => ({ items: [{ id: after + 1, threadId: 3, messageId: limit }], more: false }),
    },
    history: {
      // Message 31 is seq 4 of thread 3; the caller sees (0, 9] unless told otherwise.
      locate: async (_userId, messageId) => (messageId === 31 ? { threadId: 3, seq: 4, from: options.visible === false ? 5 : 0, to: 9 } : undefined),
    },
    clock: new FakeClock(),
    fanout,
    sendBudget: { spend: (userId) => void spent.push(userId) },
    settings: { maxBodyBytes: 100, editWindowMs: 172_800_000, requireE2e: false },
  };
  return { service: new MessageChangeService(deps), appended, spent, fanout };
}

async function refusal(promise: Promise<unknown>): Promise<ChatError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ChatError, String(error));
    return error;
  }
  return assert.fail('expected a refusal');
}

const edit = { messageId: 31, clientMsgId: 'e1', kind: 'text' as const, bodyJson: '{"text":"new"}' };

describe('MessageChangeService', () => {
  it("appends an edit to its target's thread with the window and mentions, after spending the user's send budget", async () => {
    const { service, appended, spent } = world();
    const result = await service.edit(principal, { ...edit, mentions: [9] });
    assert.deepEqual(result, { kind: 'stored', message: stored });
    assert.deepEqual(spent, [7]);
    assert.equal(appended.length, 1);
    const input = appended[0] as AppendMessageInput;
    assert.equal(input.threadId, 3);
    assert.equal(input.clientMsgId, 'e1');
    assert.deepEqual(input.change, { type: 'edit', targetId: 31, content: { kind: 'text' }, bodyJson: '{"text":"new"}', mentions: [9], editWindowMs: 172_800_000 });
  });

  it('refuses a message it cannot find or the user may not see as not_found, without appending', async () => {
    for (const [messageId, visible] of [
      [999, true],
      [31, false],
    ] as const) {
      const { service, appended } = world({ visible });
      const error = await refusal(service.edit(principal, { ...edit, messageId }));
      assert.equal(error.code, 'not_found');
      assert.equal(error.message, `no message ${messageId}`);
      assert.equal(appended.length, 0);
    }
  });

  it('refuses a body over the limit before the unit', async () => {
    const { service, appended } = world();
    const error = await refusal(service.edit(principal, { ...edit, bodyJson: JSON.stringify({ text: 'x'.repeat(200) }) }));
    assert.equal(error.code, 'payload_too_large');
    assert.equal(error.field, 'body');
    assert.equal(appended.length, 0);
  });

  it('reads an e2e edit\'s envelope as a send does: an unreadable one is refused only when the unit refuses it, with the reader\'s reason', async () => {
    const { service, appended } = world({ outcome: { kind: 'refused', reason: 'envelope_invalid' } });
    const error = await refusal(service.edit(principal, { ...edit, kind: 'e2e', bodyJson: '{"v":1}' }));
    assert.equal(error.code, 'invalid_field');
    assert.equal(error.field, 'body');
    assert.match(error.message, /v must be 2/);
    assert.deepEqual((appended[0]?.change as { content: unknown }).content, { kind: 'e2e', sealedTo: 'invalid' });
  });

  const refusals: Array<[string, AppendRefusal, string, string | undefined, RegExp]> = [
    ['someone else\'s message', { reason: 'not_author' }, 'forbidden', undefined, /^only the author can edit this message$/],
    ['an edit after the window', { reason: 'edit_window_passed', windowMs: 172_800_000 }, 'edit_window_passed', undefined, /edited for 48 hours after they are sent/],
    ['a deleted message', { reason: 'message_deleted' }, 'message_deleted', undefined, /^message 31 was deleted$/],
    ['a system or change message', { reason: 'not_changeable' }, 'invalid_field', 'message_id', /cannot be edited/],
    ['another kind', { reason: 'kind_mismatch' }, 'invalid_field', 'kind', /message 31 is e2e/],
    ['a mention of a non-member', { reason: 'mention_not_member', userId: 5 }, 'invalid_field', 'mentions', /user 5 is not a member of thread 3/],
    ['a message gone since it was located', { reason: 'no_message' }, 'not_found', undefined, /^no message 31$/],
    ['a member who left', { reason: 'not_member' }, 'forbidden', undefined, /no longer a member of thread 3/],
    ['changed devices', { reason: 'devices_changed', missing: [4], extra: [] }, 'devices_changed', undefined, /missing 4; extra none/],
    ['a client_msg_id used in another thread', { reason: 'client_id_in_other_thread' }, 'invalid_field', 'client_msg_id', /client_msg_id e1/],
  ];
  for (const [name, refused, code, field, message] of refusals) {
    it(`answers an edit refused for ${name} with ${code}`, async () => {
      const { service } = world({ outcome: { kind: 'refused', ...refused } as AppendOutcome });
      const error = await refusal(service.edit(principal, edit));
      assert.equal(error.code, code);
      assert.equal(error.field, field);
      assert.match(error.message, message);
    });
  }

  it('says who may delete for everyone when the unit refuses it', async () => {
    const { service, appended } = world({ outcome: { kind: 'refused', reason: 'not_author' } });
    const error = await refusal(service.deleteForEveryone(principal, 31, 'd1'));
    assert.equal(error.code, 'forbidden');
    assert.match(error.message, /only the author, or an owner or admin of the group/);
    assert.deepEqual(appended[0]?.change, { type: 'delete', targetId: 31 });
  });

  it('checks that a reaction is one emoji before spending or storing anything', async () => {
    for (const emoji of ['a', '👍👍', ':)', '❤', ' 👍']) {
      const { service, appended, spent } = world();
      const error = await refusal(service.react(principal, 31, emoji, true, 'r1'));
      assert.equal(error.code, 'invalid_field', emoji);
      assert.equal(error.field, 'emoji');
      assert.deepEqual([appended.length, spent.length], [0, 0]);
    }
    for (const emoji of ['👍', '👍🏽', '❤️', '🏳️‍🌈', '👨‍👩‍👧', '🇫🇷', '1️⃣']) {
      const { service, appended } = world();
      await service.react(principal, 31, emoji, false, 'r1');
      assert.deepEqual(appended[0]?.change, { type: 'reaction', targetId: 31, emoji, on: false }, emoji);
    }
  });

  it('answers a 21st emoji with invalid_field naming emoji, and a toggle that changes nothing as unchanged', async () => {
    const error = await refusal(world({ outcome: { kind: 'refused', reason: 'too_many_reactions' } }).service.react(principal, 31, '👍', true, 'r1'));
    assert.equal(error.code, 'invalid_field');
    assert.equal(error.field, 'emoji');
    assert.deepEqual(await world({ outcome: { kind: 'unchanged' } }).service.react(principal, 31, '👍', true, 'r1'), { kind: 'unchanged' });
  });

  it('announces a change to the thread and wakes no push worker', () => {
    const { service, fanout } = world();
    service.announce(stored);
    assert.deepEqual(fanout.log, ['message 3:9']);
  });

  it("tells the user's devices of a message hidden for them the first time only", async () => {
    const first = world();
    await first.service.deleteForMe(principal, 31);
    assert.deepEqual(first.fanout.log, ['hidden user 7 [31]']);
    const again = world({ hide: { kind: 'hidden', hidden: { id: 5, threadId: 3, messageId: 31 }, already: true } });
    await again.service.deleteForMe(principal, 31);
    assert.deepEqual(again.fanout.log, []);
    const missing = await refusal(world({ hide: { kind: 'refused', reason: 'no_message' } }).service.deleteForMe(principal, 8));
    assert.equal(missing.code, 'not_found');
  });

  it('caps a page of hidden messages at 500', async () => {
    const { service } = world();
    assert.deepEqual(await service.hidden(principal, 4, 10_000), { items: [{ id: 5, threadId: 3, messageId: 500 }], more: false });
  });

  it('says a window in words', () => {
    assert.deepEqual([172_800_000, 1_000, 2_000, 60_000, 90_000, 3_600_000, 604_800_000, 86_400_000].map(inWords), [
      '48 hours',
      '1 second',
      '2 seconds',
      '1 minute',
      '90 seconds',
      '1 hour',
      '7 days',
      '24 hours',
    ]);
  });
});
