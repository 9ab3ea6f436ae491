import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AppendMessageInput, AppendOutcome } from '../../src/storage/ports/messaging.js';
import { seedUser } from './storage-accounts.contract.js';
import type { PushFixture } from './storage-push.contract.js';

const NOW = 4_000_000;
const both = { apns: true, fcm: true };
const LEASE_MS = 60_000;

/** `count` users with one device each holding an FCM token, made a few at a time (each engine's group commit takes them together). */
async function usersWithTokens(fixture: PushFixture, prefix: string, count: number): Promise<Array<{ userId: number; deviceId: number }>> {
  const users: Array<{ userId: number; deviceId: number }> = [];
  for (let start = 0; start < count; start += 50) {
    const chunk = await Promise.all(
      Array.from({ length: Math.min(50, count - start) }, async (_, index) => {
        const user = await seedUser(fixture.accounts, `${prefix}${start + index}`, 1);
        const deviceId = user.deviceIds[0] as number;
        await fixture.tokens.registerPushToken(deviceId, { platform: 'fcm', token: `fcm-${prefix}-${deviceId}`, topic: null });
        return { userId: user.userId, deviceId };
      }),
    );
    users.push(...chunk);
  }
  return users;
}

/** Sends through the real message path (which moves the sender's read cursor and notes the thread for push). */
function sender(fixture: PushFixture) {
  let n = 0;
  return async (threadId: number, from: { userId: number; deviceId: number }, input: Partial<AppendMessageInput> = {}): Promise<{ id: number; seq: number }> => {
    const outcome: AppendOutcome = await fixture.messaging.appendMessage({
      threadId,
      senderUserId: from.userId,
      senderDeviceId: from.deviceId,
      clientMsgId: `q-${++n}`,
      content: { kind: 'text' },
      bodyJson: '{"text":"hi"}',
      now: NOW,
      requireE2eEverywhere: false,
      ...input,
    } as AppendMessageInput);
    assert.ok(outcome.kind === 'stored', JSON.stringify(outcome));
    return { id: outcome.message.id, seq: outcome.message.seq };
  };
}

/** The queue's side of push that fails safe: the badge, large groups' unacked messages, and fairness between threads. */
export function pushQueueContract(name: string, open: () => Promise<PushFixture>): void {
  describe(`push queue contract: ${name}`, () => {
    it("counts the badge as the user's unread over their threads: change rows and muted threads left out", async () => {
      const fixture = await open();
      const send = sender(fixture);
      const [alice, bob, carol] = await usersWithTokens(fixture, 'u', 3);
      const a = alice!;
      const b = bob!;
      const direct = (await fixture.seedThread([a.userId, b.userId], a, 0, NOW)).threadId;
      const group = (await fixture.seedThread([a.userId, b.userId, carol!.userId], a, 0, NOW)).threadId;
      const muted = (await fixture.seedThread([a.userId, b.userId], a, 0, NOW)).threadId;
      for (let i = 0; i < 3; i++) await send(direct, a);
      const target = await send(group, a);
      await send(group, a);
      await send(group, a, { change: { type: 'reaction', targetId: target.id, emoji: '👍', on: true } } as Partial<AppendMessageInput>);
      await send(group, a, { change: { type: 'edit', targetId: target.id, content: { kind: 'text' }, bodyJson: '{"text":"hey"}', editWindowMs: 0 } } as Partial<AppendMessageInput>);
      await fixture.mute(muted, b.userId);
      for (let i = 0; i < 4; i++) await send(muted, a);
      assert.equal(await fixture.queue.badgeCount(b.userId), 5, '3 direct + 2 group messages; the reaction, the edit and the muted thread are not counted');
      assert.equal(await fixture.messaging.totalUnread(b.userId), 9, 'the threads list still counts the muted thread');
      assert.equal(await fixture.queue.badgeCount(a.userId), 0, "the sender's own messages are not unread");
      const read = await fixture.messaging.markRead({ userId: b.userId, threadId: direct, seq: 2 });
      assert.equal(read.kind, 'done');
      assert.equal(await fixture.queue.badgeCount(b.userId), 3, 'read up to the second direct message');
      await send(group, b);
      assert.equal(await fixture.queue.badgeCount(b.userId), 1, 'replying in the group reads it');
      assert.equal(await fixture.admin.badgeCount(b.userId), 1, "a test notification's badge is the same read");
      await fixture.close();
    });

    it('queues a notification for a device that got a message of a large (read-diffusion) group live and went offline without acking it', async () => {
      const fixture = await open();
      const { queue, delivery } = fixture;
      const send = sender(fixture);
      const [alice, bob, carol, dave] = (await usersWithTokens(fixture, 'g', 4)) as Array<{ userId: number; deviceId: number }>;
      const group = (await fixture.seedThread([alice!.userId, bob!.userId, carol!.userId, dave!.userId], alice!, 0, NOW)).threadId;
      await fixture.mute(group, dave!.userId);
      for (const user of [bob!, carol!, dave!]) await delivery.goLive(user.deviceId);
      const first = await send(group, alice!);
      const newest = await send(group, alice!);
      await send(group, alice!, { change: { type: 'reaction', targetId: newest.id, emoji: '👍', on: true } } as Partial<AppendMessageInput>);
      assert.equal(await queue.expandPending({ limit: 10, now: NOW, platforms: both }), 1);
      assert.deepEqual(await queue.claimDuePushes({ now: NOW, limit: 10, leaseMs: LEASE_MS }), [], 'live devices: nothing queued while they are');
      // Carol acked both messages before she went; bob acked only the first.
      assert.equal((await fixture.messaging.markDelivered({ userId: carol!.userId, deviceId: carol!.deviceId, threadId: group, seq: newest.seq })).kind, 'done');
      assert.equal((await fixture.messaging.markDelivered({ userId: bob!.userId, deviceId: bob!.deviceId, threadId: group, seq: first.seq })).kind, 'done');
      // A group of 4 above read_diffusion_above = 2: going offline writes no inbox rows for it.
      const rules = { readDiffusionAbove: 2, maxMessages: 1000, push: both, now: NOW + 1 };
      for (const user of [bob!, carol!, dave!]) await delivery.goOffline(user.deviceId, rules);
      const due = await queue.claimDuePushes({ now: NOW + 1, limit: 10, leaseMs: LEASE_MS });
      assert.deepEqual(
        due.map((push) => [push.deviceId, push.threadId, push.messageId, push.seq]),
        [[bob!.deviceId, group, newest.id, newest.seq]],
        'bob: the newest content message (not the reaction after it); carol acked it; dave muted the thread',
      );
      await fixture.close();
    });

    it('in a large group, a muted member is queued only for a message that mentions them, and a reader for nothing', async () => {
      const fixture = await open();
      const { queue, delivery } = fixture;
      const send = sender(fixture);
      const [alice, bob, carol] = (await usersWithTokens(fixture, 'm', 3)) as Array<{ userId: number; deviceId: number }>;
      const group = (await fixture.seedThread([alice!.userId, bob!.userId, carol!.userId], alice!, 0, NOW)).threadId;
      await fixture.mute(group, bob!.userId);
      for (const user of [bob!, carol!]) await delivery.goLive(user.deviceId);
      const mention = await send(group, alice!, { mentions: [bob!.userId] } as Partial<AppendMessageInput>);
      const last = await send(group, alice!);
      // Carol read it on another device: nothing to tell her device.
      assert.equal((await fixture.messaging.markRead({ userId: carol!.userId, threadId: group, seq: last.seq })).kind, 'done');
      const rules = { readDiffusionAbove: 2, maxMessages: 1000, push: both, now: NOW + 1 };
      for (const user of [bob!, carol!]) await delivery.goOffline(user.deviceId, rules);
      const due = await queue.claimDuePushes({ now: NOW + 1, limit: 10, leaseMs: LEASE_MS });
      assert.deepEqual(due.map((push) => [push.deviceId, push.messageId, push.mentioned]), [[bob!.deviceId, mention.id, true]]);
      await fixture.close();
    });

    it("claims a two-person thread's notification in the first batch, queued after a thousand of one large group", async () => {
      const fixture = await open();
      const { queue } = fixture;
      const [alice, ...members] = await usersWithTokens(fixture, 'big', 1_001);
      const large = await fixture.seedThread([alice!.userId, ...members.map((member) => member.userId)], alice!, 1, NOW);
      assert.equal(await queue.expandPending({ limit: 10, now: NOW, platforms: both }), 1);
      const [dana, erin] = await usersWithTokens(fixture, 'dm', 2);
      const direct = await fixture.seedThread([dana!.userId, erin!.userId], dana!, 1, NOW + 1);
      assert.equal(await queue.expandPending({ limit: 10, now: NOW + 1, platforms: both }), 1);
      const batch = await queue.claimDuePushes({ now: NOW + 1, limit: 10, leaseMs: LEASE_MS });
      assert.equal(batch.length, 10);
      assert.deepEqual(
        batch.filter((push) => push.threadId === direct.threadId).map((push) => [push.deviceId, push.messageId]),
        [[erin!.deviceId, direct.messageIds[0]]],
        'the direct message is not behind the group',
      );
      assert.equal(batch.filter((push) => push.threadId === large.threadId).length, 9, 'the rest of the batch: the group, oldest first');
      // Nothing is lost: the group's others come in the next claims.
      let settled = 0;
      for (let next = batch; next.length > 0; next = await queue.claimDuePushes({ now: NOW + 1, limit: 500, leaseMs: LEASE_MS })) {
        await Promise.all(next.map((push) => queue.settlePush(push, 'sent')));
        settled += next.length;
      }
      assert.deepEqual([settled, (await fixture.admin.pushCounts()).sent], [1_001, 1_001]);
      await fixture.close();
    });
  });
}
