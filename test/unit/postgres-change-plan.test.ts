import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ChangeInput } from '../../src/storage/ports/messaging.js';
import type { SenderView } from '../../src/storage/postgres/append-plan.js';
import { type TargetState, decideChange } from '../../src/storage/postgres/change-plan.js';

describe('the rules of a change on PostgreSQL (decideChange)', () => {
  const sender = (more: Partial<SenderView> = {}): SenderView => ({
    lastSeq: 9,
    memberCount: 3,
    e2eRequired: false,
    left: false,
    joinedSeq: 0,
    role: 'member',
    threadKind: 'group',
    ...more,
  });
  const target = (more: Partial<TargetState> = {}): TargetState => ({
    id: 50,
    threadId: 1,
    seq: 5,
    senderUserId: 1,
    kind: 'text',
    isChange: false,
    unseenByMembers: false,
    createdAt: 1000,
    bodyJson: '"hi"',
    mentionsJson: null,
    attachmentsJson: '[{"id":"u"}]',
    editedAt: null,
    deletedAt: null,
    reactionsJson: '[{"emoji":"👍","user_ids":[2]}]',
    ...more,
  });
  const change = (request: ChangeInput['change'], more: Partial<ChangeInput> = {}): ChangeInput => ({
    threadId: 1,
    senderUserId: 1,
    senderDeviceId: 11,
    clientMsgId: 'c',
    now: 2000,
    requireE2eEverywhere: false,
    change: request,
    ...more,
  });
  const edit = (more: Partial<Extract<ChangeInput['change'], { type: 'edit' }>> = {}): ChangeInput['change'] => ({
    type: 'edit',
    targetId: 50,
    content: { kind: 'text' },
    bodyJson: '"new"',
    editWindowMs: 0,
    ...more,
  });
  const noContentRefusal = (): undefined => undefined;
  // `at`: the target as read ('none': no such message).
  const refusal = (input: ChangeInput, view = sender(), at: TargetState | 'none' = target()) => {
    const decision = decideChange(input, view, at === 'none' ? undefined : at, new Set([1, 2]), noContentRefusal);
    return 'kind' in decision ? decision : 'stored';
  };

  it('refuses in the port order: unseen, not changeable, deleted, not the author, window, kind', () => {
    assert.deepEqual(refusal(change(edit()), sender({ joinedSeq: 5 })), { kind: 'refused', reason: 'no_message' });
    assert.deepEqual(refusal(change(edit()), sender(), target({ threadId: 2 })), { kind: 'refused', reason: 'no_message' });
    assert.deepEqual(refusal(change(edit()), sender(), 'none'), { kind: 'refused', reason: 'no_message' });
    assert.deepEqual(refusal(change(edit()), sender(), target({ kind: 'system' })), { kind: 'refused', reason: 'not_changeable' });
    assert.deepEqual(refusal(change(edit()), sender(), target({ isChange: true, deletedAt: 1 })), { kind: 'refused', reason: 'not_changeable' });
    assert.deepEqual(refusal(change(edit()), sender(), target({ deletedAt: 1500, senderUserId: 2 })), { kind: 'refused', reason: 'message_deleted' });
    assert.deepEqual(refusal(change(edit(), { senderUserId: 2 })), { kind: 'refused', reason: 'not_author' });
    assert.deepEqual(refusal(change(edit({ editWindowMs: 999 }))), { kind: 'refused', reason: 'edit_window_passed', windowMs: 999 });
    assert.equal(refusal(change(edit({ editWindowMs: 1000 }))), 'stored', 'the window includes its end');
    assert.deepEqual(refusal(change(edit({ content: { kind: 'e2e', sealedTo: [11] } }))), { kind: 'refused', reason: 'kind_mismatch' });
    assert.deepEqual(refusal(change(edit({ mentions: [2, 9] }))), { kind: 'refused', reason: 'mention_not_member', userId: 9 });
  });

  it('lets a group owner or admin delete anyone\'s message, a member only their own, and answers a deleted one unchanged', () => {
    const del = change({ type: 'delete', targetId: 50 }, { senderUserId: 2 });
    assert.deepEqual(refusal(del), { kind: 'refused', reason: 'not_author' });
    assert.equal(refusal(del, sender({ role: 'admin' })), 'stored');
    assert.equal(refusal(del, sender({ role: 'owner' })), 'stored');
    assert.deepEqual(refusal(del, sender({ role: 'owner', threadKind: 'direct' })), { kind: 'refused', reason: 'not_author' });
    assert.deepEqual(refusal(del, sender({ role: 'admin' }), target({ deletedAt: 1 })), { kind: 'unchanged' });
    assert.deepEqual(refusal(del, sender(), target({ deletedAt: 1 })), { kind: 'refused', reason: 'not_author' }, 'who may not delete it learns nothing of its state');
  });

  it('leaves a deleted target erased: no body, attachments, mentions or reactions', () => {
    const decision = decideChange(change({ type: 'delete', targetId: 50 }), sender(), target({ mentionsJson: '[2]' }), new Set(), noContentRefusal);
    assert.ok('row' in decision);
    assert.deepEqual(decision.row, { kind: 'text', bodyJson: 'null', attachments: undefined, targetId: 50, change: { type: 'delete' } });
    assert.deepEqual(decision.target, {
      deleted: true,
      state: { ...target(), bodyJson: 'null', attachmentsJson: null, mentionsJson: null, reactionsJson: null, deletedAt: 2000 },
    });
  });
});
