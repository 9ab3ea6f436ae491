import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SendInput, StoredMessage } from '../../src/storage/ports/messaging.js';
import { type AppendCheck, planAppends } from '../../src/storage/postgres/append-plan.js';

// Thread 1: alice (user 1, device 11) and bob (user 2, device 12), last seq 4. Thread 2: alice and carol, last seq 0.
const input = (overrides: Partial<SendInput>): SendInput => ({
  threadId: 1,
  senderUserId: 1,
  senderDeviceId: 11,
  clientMsgId: 'c',
  content: { kind: 'text' },
  bodyJson: '{"text":"hi"}',
  now: 7,
  requireE2eEverywhere: false,
  ...overrides,
});
const fine = { revoked: false, disabled: false, deleted: false };
const inThread = (lastSeq: number, more: Partial<NonNullable<AppendCheck['thread']>> = {}): AppendCheck['thread'] => ({
  lastSeq,
  memberCount: 2,
  e2eRequired: false,
  left: false,
  joinedSeq: 0,
  role: 'member',
  threadKind: 'group',
  ...more,
});
const check = (more: Partial<AppendCheck> = {}): AppendCheck => ({ token: fine, thread: inThread(4), approved: undefined, existing: undefined, ...more });
const stored: StoredMessage = { id: 90, threadId: 1, seq: 3, senderUserId: 1, senderDeviceId: 11, clientMsgId: 'old', kind: 'text', bodyJson: '{}', createdAt: 1, attachmentsJson: null,
  replyTo: null, mentionsJson: null, editedAt: null, deletedAt: null, reactionsJson: null, targetId: null, change: null };

describe('the plan of one batch of sends (PostgreSQL)', () => {
  it('decides the inputs in order: seqs follow on per thread, a client id used twice in the batch is stored once', () => {
    const plan = planAppends(
      [
        input({ clientMsgId: 'a' }),
        input({ clientMsgId: 'b', threadId: 2 }),
        input({ clientMsgId: 'a', now: 8 }),
        input({ clientMsgId: 'a', threadId: 2 }),
        input({ clientMsgId: 'b', senderUserId: 2, senderDeviceId: 12 }),
      ],
      [check(), check({ thread: inThread(0) }), check(), check({ thread: inThread(0) }), check()],
    );
    assert.deepEqual(
      plan.messages.map((m) => [m.threadId, m.seq, m.senderDeviceId, m.clientMsgId]),
      [
        [1, 5, 11, 'a'],
        [2, 1, 11, 'b'],
        [1, 6, 12, 'b'],
      ],
      'the same client id from another device is another message',
    );
    assert.deepEqual(plan.outcomes, [
      { kind: 'stored', planned: 0 },
      { kind: 'stored', planned: 1 },
      { kind: 'duplicate', planned: 0 },
      { kind: 'final', outcome: { kind: 'refused', reason: 'client_id_in_other_thread' } },
      { kind: 'stored', planned: 2 },
    ]);
    assert.deepEqual([...plan.threads], [
      [1, { lastSeq: 6, memberCount: 2 }],
      [2, { lastSeq: 1, memberCount: 2 }],
    ]);
  });

  it('lets a refused input not take the client id: a later one of the batch stores under it', () => {
    const plan = planAppends([input({ clientMsgId: 'x', requireE2eEverywhere: true }), input({ clientMsgId: 'x' })], [check(), check()]);
    assert.deepEqual(plan.outcomes, [{ kind: 'final', outcome: { kind: 'refused', reason: 'encryption_required' } }, { kind: 'stored', planned: 0 }]);
    assert.equal(plan.messages[0]?.seq, 5);
  });

  it('answers a resend of a stored message before any refusal but the token, and takes no seq for it', () => {
    const plan = planAppends(
      [input({ clientMsgId: 'old' }), input({ clientMsgId: 'old' }), input({ clientMsgId: 'old', threadId: 2 }), input({ clientMsgId: 'new' })],
      [check({ existing: stored, thread: inThread(4, { left: true }) }), check({ existing: stored, token: { ...fine, revoked: true } }), check({ existing: stored }), check()],
    );
    assert.deepEqual(plan.outcomes, [
      { kind: 'final', outcome: { kind: 'duplicate', message: stored } },
      { kind: 'final', outcome: { kind: 'signed_out', state: { ...fine, revoked: true } } },
      { kind: 'final', outcome: { kind: 'refused', reason: 'client_id_in_other_thread' } },
      { kind: 'stored', planned: 0 },
    ]);
    assert.equal(plan.messages[0]?.seq, 5, 'refusals and duplicates leave no gap');
  });

  it('refuses in the order the port states: no device, never a member, left, content', () => {
    const plan = planAppends(
      [
        input({}),
        input({}),
        input({}),
        input({ content: { kind: 'e2e', sealedTo: 'invalid' } }),
        input({ content: { kind: 'e2e', sealedTo: [11, 12] } }),
        input({ content: { kind: 'e2e', sealedTo: [11, 99] } }),
        input({ clientMsgId: 'ok', content: { kind: 'e2e', sealedTo: [12, 11] } }),
      ],
      [
        check({ token: undefined }),
        check({ thread: undefined }),
        check({ thread: inThread(4, { left: true }) }),
        check({ approved: [11, 12] }),
        check({ approved: [12] }),
        check({ approved: [11, 12] }),
        check({ approved: [11, 12], thread: inThread(4, { e2eRequired: true }) }),
      ],
    );
    assert.deepEqual(
      plan.outcomes.map((o) => (o.kind === 'final' ? o.outcome : o)),
      [
        { kind: 'signed_out', state: undefined },
        { kind: 'refused', reason: 'no_thread' },
        { kind: 'refused', reason: 'not_member' },
        { kind: 'refused', reason: 'envelope_invalid' },
        { kind: 'refused', reason: 'device_unapproved' },
        { kind: 'refused', reason: 'devices_changed', missing: [12], extra: [99] },
        { kind: 'stored', planned: 0 },
      ],
    );
  });
});
