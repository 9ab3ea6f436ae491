import assert from 'node:assert/strict';
import type { AppendOutcome, ChangeRequest, SendInput, StoredMessage } from '../../src/storage/ports/messaging.js';
import type { MessagingFixture } from './storage-messaging.contract.js';

export const NOW = 1_000_000;
/** The edit window the tests' edits carry (messages.edit_window_seconds as ms). */
export const WINDOW = 60_000;

export type Who = { readonly userId: number; readonly deviceId: number };

/**
 * The world of the message-change contracts: alice and bob in a direct
 * thread; a group of alice (owner), bob (member), carol (admin), its two
 * system messages read and received; dave outside both. Each person has one
 * device, not live (inbox rows).
 */
export async function changesWorld(f: MessagingFixture) {
  const ids = { alice: await f.user('alice'), bob: await f.user('bob'), carol: await f.user('carol'), dave: await f.user('dave') };
  const alice: Who = { userId: ids.alice, deviceId: await f.device(ids.alice) };
  const bob: Who = { userId: ids.bob, deviceId: await f.device(ids.bob) };
  const carol: Who = { userId: ids.carol, deviceId: await f.device(ids.carol) };
  const dave: Who = { userId: ids.dave, deviceId: await f.device(ids.dave) };
  const { threadId: direct } = await f.threads.openDirect({ userIds: [alice.userId, bob.userId], createdBy: alice.userId, now: NOW });
  const { threadId: group } = await f.threads.createGroup({
    title: 'g',
    actor: alice,
    memberIds: [bob.userId, carol.userId],
    e2eRequired: false,
    event: { event: 'group_created' },
    now: NOW,
  });
  const roles = await f.threads.changeGroup({
    threadId: group,
    actor: alice,
    expect: { actorRole: 'owner' },
    change: { kind: 'roles', roles: [{ userId: carol.userId, role: 'admin' }], event: { event: 'roles_changed' } },
    now: NOW,
  });
  assert.equal(roles.kind, 'changed');
  // The group's two system messages read and received by all: each test counts, syncs and drains only what it adds.
  for (const who of [alice, bob, carol]) {
    await f.messaging.markRead({ userId: who.userId, threadId: group, seq: 2 });
    await f.messaging.markDelivered({ userId: who.userId, deviceId: who.deviceId, threadId: group, seq: 2 });
  }
  let n = 0;
  const clientId = () => `c${++n}`;

  /** A text message from `who` (alice by default) into `threadId` (the direct thread by default). */
  const send = (who: Who = alice, more: Partial<SendInput> = {}) =>
    f.messaging.appendMessage({
      threadId: direct,
      senderUserId: who.userId,
      senderDeviceId: who.deviceId,
      clientMsgId: clientId(),
      content: { kind: 'text' },
      bodyJson: '{"text":"hi"}',
      now: NOW,
      requireE2eEverywhere: false,
      ...more,
    });
  /** A change by `who` in `threadId` (the direct thread by default). */
  const change = (who: Who, request: ChangeRequest, more: { threadId?: number; clientMsgId?: string; now?: number } = {}) =>
    f.messaging.appendMessage({
      threadId: more.threadId ?? direct,
      senderUserId: who.userId,
      senderDeviceId: who.deviceId,
      clientMsgId: more.clientMsgId ?? clientId(),
      now: more.now ?? NOW + 1000,
      requireE2eEverywhere: false,
      change: request,
    });
  const edit = (who: Who, targetId: number, text: string, more: { threadId?: number; mentions?: number[]; now?: number; clientMsgId?: string } = {}) =>
    change(
      who,
      { type: 'edit', targetId, content: { kind: 'text' }, bodyJson: JSON.stringify({ text }), editWindowMs: WINDOW, ...(more.mentions ? { mentions: more.mentions } : {}) },
      more,
    );
  const remove = (who: Who, targetId: number, more: { threadId?: number; clientMsgId?: string } = {}) => change(who, { type: 'delete', targetId }, more);
  const react = (who: Who, targetId: number, emoji: string, on = true, more: { threadId?: number; clientMsgId?: string } = {}) =>
    change(who, { type: 'reaction', targetId, emoji, on }, more);
  /** Every message of the thread `who` sees in history, oldest first. */
  const history = async (who: Who, threadId = direct) => (await f.history.page({ userId: who.userId, threadId, anchor: { after: 0 }, size: 500 }))?.messages ?? [];
  const shown = async (who: Who, messageId: number, threadId = direct) => (await history(who, threadId)).find((m) => m.id === messageId);
  return { f, alice, bob, carol, dave, direct, group, send, change, edit, remove, react, history, shown, clientId };
}

export type ChangesWorld = Awaited<ReturnType<typeof changesWorld>>;

export function stored(outcome: AppendOutcome): StoredMessage {
  assert.equal(outcome.kind, 'stored', JSON.stringify(outcome));
  return (outcome as { message: StoredMessage }).message;
}
