import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AccountsStorage } from '../../src/storage/ports/accounts.js';
import type { AdminStorage } from '../../src/storage/ports/admin.js';
import type { DeliveryStorage } from '../../src/storage/ports/delivery.js';
import type { AppendMessageInput, AppendOutcome, MessagingStorage } from '../../src/storage/ports/messaging.js';
import type { PushQueueStorage, PushTokensStorage } from '../../src/storage/ports/push.js';
import { seedUser } from './storage-accounts.contract.js';

export interface PushFixture {
  readonly tokens: PushTokensStorage;
  readonly queue: PushQueueStorage;
  readonly accounts: AccountsStorage;
  /** For the counters. */
  readonly admin: AdminStorage;
  /** A thread of these users with `messages` messages from `sender`, noted for push as the message path does. */
  seedThread(members: readonly number[], sender: { userId: number; deviceId: number }, messages: number, now: number): Promise<{ threadId: number; messageIds: number[] }>;
  mute(threadId: number, userId: number): Promise<void>;
  /** The message path's storage, as the server configures it with both providers: what it queues is under test. */
  readonly messaging: MessagingStorage;
  /** Devices going live and offline (offline queues a notification for what they got live and never acked). */
  readonly delivery: DeliveryStorage;
  /** Another queue storage on the same database, as another node opens it (another claimant: another name); close() closes it too. */
  anotherQueue(): Promise<PushQueueStorage>;
  /** Async: a networked engine closes its pool. */
  close(): Promise<void>;
}

const NOW = 4_000_000;
const both = { apns: true, fcm: true };
const apnsToken = (n: number) => String(n).repeat(64).slice(0, 64);
const LEASE_MS = 60_000;
const claim = (queue: PushQueueStorage, now: number, limit = 10, leaseMs = LEASE_MS) => queue.claimDuePushes({ now, limit, leaseMs });

/** Alice's thread with bob, whose `devices` devices have a token each, expanded: a queued notification per device of bob. */
async function queuedForDevices(fixture: PushFixture, devices: number): Promise<{ deviceIds: number[] }> {
  const alice = await seedUser(fixture.accounts, 'alice', 1);
  const bob = await seedUser(fixture.accounts, 'bob', devices);
  for (const deviceId of bob.deviceIds) await fixture.tokens.registerPushToken(deviceId, { platform: 'fcm', token: `token-of-${deviceId}`, topic: null });
  await fixture.seedThread([alice.userId, bob.userId], { userId: alice.userId, deviceId: alice.deviceIds[0] as number }, 1, NOW);
  assert.equal(await fixture.queue.expandPending({ limit: 10, now: NOW, platforms: both }), 1);
  return { deviceIds: bob.deviceIds };
}

/**
 * A group of alice (the sender) and `others`, each with one device with a
 * token (the users' ids and devices in order), and an append function that
 * goes through the real message path.
 */
async function groupWithTokens(fixture: PushFixture, others: readonly string[]) {
  const alice = await seedUser(fixture.accounts, 'alice', 1);
  const sender = { userId: alice.userId, deviceId: alice.deviceIds[0] as number };
  const users: Array<{ userId: number; deviceId: number }> = [];
  for (const [index, name] of others.entries()) {
    const user = await seedUser(fixture.accounts, name, 1);
    const deviceId = user.deviceIds[0] as number;
    await fixture.tokens.registerPushToken(deviceId, { platform: index % 2 === 0 ? 'apns' : 'fcm', token: index % 2 === 0 ? apnsToken(index + 1) : `fcm-${deviceId}`, topic: null });
    users.push({ userId: user.userId, deviceId });
  }
  const { threadId } = await fixture.seedThread([sender.userId, ...users.map((user) => user.userId)], sender, 0, NOW);
  let n = 0;
  const append = async (input: Partial<AppendMessageInput>): Promise<number> => {
    const outcome: AppendOutcome = await fixture.messaging.appendMessage({
      threadId,
      senderUserId: sender.userId,
      senderDeviceId: sender.deviceId,
      clientMsgId: `push-${++n}`,
      content: { kind: 'text' },
      bodyJson: '{"text":"hi"}',
      now: NOW,
      requireE2eEverywhere: false,
      ...input,
    } as AppendMessageInput);
    assert.ok(outcome.kind === 'stored', JSON.stringify(outcome));
    return outcome.message.id;
  };
  return { threadId, sender, users, append };
}

/** Push tokens, and the queue as the dispatcher works it: expand, due, settle, retry. */
export function pushStorageContract(name: string, open: () => Promise<PushFixture>): void {
  describe(`push storage contract: ${name}`, () => {
    it('gives one token to one device: registering it elsewhere moves it; unregister removes it', async () => {
      const { tokens, accounts, close } = await open();
      const { deviceIds } = await seedUser(accounts, 'alice', 2);
      const [a, b] = deviceIds as [number, number];
      const registration = { platform: 'apns' as const, token: apnsToken(1), topic: 'org.example.chat' };
      await tokens.registerPushToken(a, registration);
      assert.deepEqual(await tokens.pushRegistration(a), registration);
      await tokens.registerPushToken(b, { ...registration, topic: null });
      assert.equal(await tokens.pushRegistration(a), undefined, 'moved to the new device');
      assert.deepEqual(await tokens.pushRegistration(b), { ...registration, topic: null });
      await tokens.unregisterPushToken(b);
      assert.equal(await tokens.pushRegistration(b), undefined);
      await close();
    });

    it("expands a thread's news to one row per other member's device with a token, not muted, on a configured platform", async () => {
      const fixture = await open();
      const { tokens, queue, accounts } = fixture;
      const alice = await seedUser(accounts, 'alice', 1);
      const bob = await seedUser(accounts, 'bob', 2);
      const carol = await seedUser(accounts, 'carol', 1);
      const dave = await seedUser(accounts, 'dave', 1);
      const [b1, b2] = bob.deviceIds as [number, number];
      await tokens.registerPushToken(alice.deviceIds[0] as number, { platform: 'apns', token: apnsToken(1), topic: null });
      await tokens.registerPushToken(b1, { platform: 'apns', token: apnsToken(2), topic: null });
      await tokens.registerPushToken(b2, { platform: 'fcm', token: 'f'.repeat(30), topic: null });
      await tokens.registerPushToken(carol.deviceIds[0] as number, { platform: 'apns', token: apnsToken(3), topic: null });
      const sender = { userId: alice.userId, deviceId: alice.deviceIds[0] as number };
      const { threadId, messageIds } = await fixture.seedThread([alice.userId, bob.userId, carol.userId, dave.userId], sender, 2, NOW);
      await fixture.mute(threadId, carol.userId);
      assert.equal(await queue.expandPending({ limit: 10, now: NOW, platforms: { apns: true, fcm: false } }), 1);
      const due = await claim(queue, NOW);
      assert.deepEqual(due.map((push) => [push.deviceId, push.messageId, push.seq, push.attempts]), [[b1, messageIds[1], 2, 0]], 'the newest message, the apns device only');
      assert.deepEqual(due.map((push) => [push.deviceLive, push.deviceRevoked, push.muted, push.left]), [[false, false, false, false]], 'real booleans');
      assert.equal(await queue.expandPending({ limit: 10, now: NOW, platforms: both }), 0, 'expanded once');
      assert.deepEqual(await claim(queue, NOW - 1), [], 'not due before its time');
      await fixture.close();
    });

    it('settles a row (counted) unless a newer message took it; retries later; drops a dead token', async () => {
      const fixture = await open();
      const { tokens, queue, accounts, admin } = fixture;
      const alice = await seedUser(accounts, 'alice', 1);
      const bob = await seedUser(accounts, 'bob', 1);
      const b1 = bob.deviceIds[0] as number;
      await tokens.registerPushToken(b1, { platform: 'apns', token: apnsToken(2), topic: null });
      const sender = { userId: alice.userId, deviceId: alice.deviceIds[0] as number };
      await fixture.seedThread([alice.userId, bob.userId], sender, 1, NOW);
      await queue.expandPending({ limit: 10, now: NOW, platforms: both });
      const [row] = await claim(queue, NOW);
      assert.ok(row);
      await queue.retryPush(row.id, NOW + 500, 'provider busy');
      assert.deepEqual(await claim(queue, NOW), []);
      assert.equal(await queue.nextDueAfter(NOW), NOW + 500);
      const [again] = await claim(queue, NOW + 500);
      assert.equal(again?.attempts, 1);
      await queue.settlePush(again!, 'sent');
      assert.deepEqual(await claim(queue, NOW + 500), []);
      assert.equal(await queue.nextDueAfter(NOW), null);
      assert.equal((await admin.pushCounts()).sent, 1);

      await fixture.seedThread([alice.userId, bob.userId], sender, 1, NOW + 1_000);
      await queue.expandPending({ limit: 10, now: NOW + 1_000, platforms: both });
      const [pending] = await claim(queue, NOW + 1_000);
      await queue.settlePush({ ...pending!, messageId: pending!.messageId - 1 }, 'skipped');
      assert.equal((await claim(queue, NOW + 1_000)).length, 1, 'a newer message holds the row: it stays');
      await queue.dropDeadToken(pending!, apnsToken(2));
      assert.deepEqual(await claim(queue, NOW + 1_000), []);
      assert.equal(await tokens.pushRegistration(b1), undefined);
      const counts = await admin.pushCounts();
      assert.deepEqual([counts.sent, counts.skipped, counts.droppedTokens, counts.queued], [1, 1, 1, 0]);
      await fixture.close();
    });

    it('a newer message taking over a row in backoff starts afresh (attempts 0, due now); a deferred row keeps its attempts', async () => {
      const fixture = await open();
      const { queue } = fixture;
      const { threadId, users, append } = await groupWithTokens(fixture, ['bob', 'carol']);
      const [bob, carol] = users as [(typeof users)[0], (typeof users)[0]];
      await fixture.mute(threadId, carol.userId);
      // bob through the thread's expansion, carol (muted) through a mention: both upserts.
      await append({ bodyJson: '{"text":"@carol first"}', mentions: [carol.userId] });
      await queue.expandPending({ limit: 10, now: NOW, platforms: both });
      const first = await claim(queue, NOW);
      assert.equal(first.length, 2);
      for (const row of first) await queue.retryPush(row.id, NOW + 300_000, 'provider busy');
      for (const row of await claim(queue, NOW + 300_000)) await queue.retryPush(row.id, NOW + 600_000, 'provider busy');
      // New messages of the thread take both rows while they back off.
      await append({ bodyJson: '{"text":"@carol second"}', mentions: [carol.userId], now: NOW + 1_000 });
      await queue.expandPending({ limit: 10, now: NOW + 1_000, platforms: both });
      const taken = await claim(queue, NOW + 1_000);
      assert.deepEqual(
        taken.map((row) => [row.deviceId, row.attempts]).sort((a, b) => (a[0] as number) - (b[0] as number)),
        [[bob.deviceId, 0], [carol.deviceId, 0]].sort((a, b) => (a[0] as number) - (b[0] as number)),
        'due at once, and the older message\'s failures do not count against the newer one',
      );
      assert.ok(taken.every((row) => !first.some((old) => old.messageId === row.messageId)), 'the newer message');
      // A paused provider puts rows back without counting an attempt; never earlier than they were due.
      const row = taken[0]!;
      await queue.retryPush(row.id, NOW + 2_000, 'provider busy');
      await queue.deferPushes([row.id], NOW + 50_000);
      assert.deepEqual((await claim(queue, NOW + 49_999)).map((due) => due.id).filter((id) => id === row.id), []);
      const deferred = (await claim(queue, NOW + 50_000)).find((due) => due.id === row.id);
      assert.equal(deferred?.attempts, 1);
      await queue.deferPushes([row.id], NOW + 10_000);
      assert.deepEqual((await claim(queue, NOW + 49_999, 10, 0)).map((due) => due.id).filter((id) => id === row.id), [], 'a defer never moves a row earlier');
      await fixture.close();
    });

    it('mute does not silence a mention: a muted member is queued for the message that mentions them, even after a later message', async () => {
      const fixture = await open();
      const { queue } = fixture;
      const { threadId, users, append } = await groupWithTokens(fixture, ['bob', 'carol', 'dave']);
      const [bob, carol, dave] = users as [(typeof users)[0], (typeof users)[0], (typeof users)[0]];
      await fixture.mute(threadId, carol.userId);
      await fixture.mute(threadId, dave.userId);
      const mentioning = await append({ bodyJson: '{"text":"@carol look"}', mentions: [carol.userId] });
      // A later message of the thread takes its push_threads row: the mention must not ride on it.
      const later = await append({ bodyJson: '{"text":"anyone?"}' });
      await queue.expandPending({ limit: 10, now: NOW, platforms: both });
      const due = await claim(queue, NOW);
      const byDevice = new Map(due.map((push) => [push.deviceId, push]));
      assert.deepEqual([...byDevice.keys()].sort((a, b) => a - b), [bob.deviceId, carol.deviceId].sort((a, b) => a - b), 'dave muted and not mentioned: none');
      assert.deepEqual(
        [byDevice.get(carol.deviceId)?.messageId, byDevice.get(carol.deviceId)?.muted, byDevice.get(carol.deviceId)?.mentioned],
        [mentioning, true, true],
        'carol: the message that mentions her, as a mention',
      );
      assert.deepEqual([byDevice.get(bob.deviceId)?.messageId, byDevice.get(bob.deviceId)?.mentioned], [later, false], 'bob: the newest, no mention');
      assert.equal((await fixture.admin.pushCounts()).queued, 2, 'nothing else queued');
      await fixture.close();
    });

    it('a mention through mute queues neither the sender nor a device without a token', async () => {
      const fixture = await open();
      const { queue, tokens } = fixture;
      const { threadId, sender, users, append } = await groupWithTokens(fixture, ['bob', 'carol']);
      const [bob, carol] = users as [(typeof users)[0], (typeof users)[0]];
      await tokens.registerPushToken(sender.deviceId, { platform: 'apns', token: apnsToken(9), topic: null });
      await tokens.unregisterPushToken(carol.deviceId);
      for (const user of [sender, bob, carol]) await fixture.mute(threadId, user.userId);
      await append({ mentions: [sender.userId, bob.userId, carol.userId] });
      await queue.expandPending({ limit: 10, now: NOW, platforms: both });
      const due = await claim(queue, NOW);
      assert.deepEqual(due.map((push) => [push.deviceId, push.mentioned]), [[bob.deviceId, true]]);
      await fixture.close();
    });

    it('change rows (edit, reaction, delete) queue no notification, not even an edit that adds a mention of a muted member', async () => {
      const fixture = await open();
      const { queue } = fixture;
      const { threadId, users, append } = await groupWithTokens(fixture, ['bob', 'carol']);
      const carol = users[1] as (typeof users)[0];
      await fixture.mute(threadId, carol.userId);
      const target = await append({});
      await queue.expandPending({ limit: 10, now: NOW, platforms: both });
      for (const push of await claim(queue, NOW)) await queue.settlePush(push, 'sent');
      assert.equal((await fixture.admin.pushCounts()).queued, 0);
      await append({ change: { type: 'edit', targetId: target, content: { kind: 'text' }, bodyJson: '{"text":"hi @carol"}', mentions: [carol.userId], editWindowMs: 0 } } as Partial<AppendMessageInput>);
      await append({ change: { type: 'reaction', targetId: target, emoji: '👍', on: true } } as Partial<AppendMessageInput>);
      await append({ change: { type: 'delete', targetId: target } } as Partial<AppendMessageInput>);
      assert.equal(await queue.expandPending({ limit: 10, now: NOW, platforms: both }), 0, 'no thread noted');
      assert.deepEqual(await claim(queue, NOW), []);
      assert.equal((await fixture.admin.pushCounts()).queued, 0);
      await fixture.close();
    });

    it('a queued notification whose message was deleted for everyone says so (the dispatcher drops it)', async () => {
      const fixture = await open();
      const { queue } = fixture;
      const { append } = await groupWithTokens(fixture, ['bob']);
      const target = await append({});
      await append({ change: { type: 'delete', targetId: target } } as Partial<AppendMessageInput>);
      await queue.expandPending({ limit: 10, now: NOW, platforms: both });
      assert.deepEqual((await claim(queue, NOW)).map((push) => [push.messageId, push.deleted]), [[target, true]]);
      await fixture.close();
    });

    it('a device going offline is queued for what it got live and never acked: not for change rows, and in a muted thread only for a mention', async () => {
      const fixture = await open();
      const { queue, delivery } = fixture;
      const { threadId, users, append } = await groupWithTokens(fixture, ['bob', 'carol', 'dave']);
      const [bob, carol, dave] = users as [(typeof users)[0], (typeof users)[0], (typeof users)[0]];
      await fixture.mute(threadId, carol.userId);
      await fixture.mute(threadId, dave.userId);
      for (const user of users) await delivery.goLive(user.deviceId);
      const mentioning = await append({ mentions: [carol.userId] });
      const plain = await append({});
      await append({ change: { type: 'reaction', targetId: plain, emoji: '👍', on: true } } as Partial<AppendMessageInput>);
      assert.equal(await queue.expandPending({ limit: 10, now: NOW, platforms: both }), 1);
      assert.deepEqual(await claim(queue, NOW), [], 'live devices: nothing queued while they are');
      const rules = { readDiffusionAbove: 50, maxMessages: 1000, push: both, now: NOW + 1 };
      for (const user of users) await delivery.goOffline(user.deviceId, rules);
      const due = await claim(queue, NOW + 1);
      const got = new Map(due.map((push) => [push.deviceId, [push.messageId, push.mentioned]]));
      assert.deepEqual(got.get(bob.deviceId), [plain, false], 'bob: the newest content message, not the reaction after it');
      assert.deepEqual(got.get(carol.deviceId), [mentioning, true], 'carol (muted): the message that mentions her');
      assert.equal(got.has(dave.deviceId), false, 'dave (muted, not mentioned): none');
      await fixture.close();
    });

    it('gives a claimed notification to no other claimant until its lease runs out, then to another (a dead node is taken over)', async () => {
      const fixture = await open();
      const { queue, admin } = fixture;
      const other = await fixture.anotherQueue();
      await queuedForDevices(fixture, 1);
      const [row] = await claim(queue, NOW, 10, 1_000);
      assert.ok(row);
      assert.deepEqual(await claim(other, NOW + 999), [], 'claimed by the first');
      assert.deepEqual(
        (await claim(queue, NOW, 10, 1_000)).map((push) => push.id),
        [row.id],
        'its own claim comes back to a claimant (restarted, it takes it back at once; a dispatcher skips what it has in flight)',
      );
      assert.deepEqual(await claim(other, NOW + 999), [], 'claimed again: the lease runs from the last claim');
      assert.equal(await other.nextDueAfter(NOW + 999), NOW + 1_000, 'due again when the lease runs out');
      const [taken] = await claim(other, NOW + 1_000);
      assert.deepEqual([taken?.id, taken?.messageId, taken?.attempts], [row.id, row.messageId, 0]);
      await other.settlePush(taken!, 'sent');
      assert.deepEqual([(await admin.pushCounts()).sent, (await admin.pushCounts()).queued], [1, 0]);
      await fixture.close();
    });

    it('releases every claim of a claimant that stops: another claims them at once', async () => {
      const fixture = await open();
      const { queue } = fixture;
      const other = await fixture.anotherQueue();
      await queuedForDevices(fixture, 2);
      assert.equal((await claim(queue, NOW)).length, 2);
      assert.deepEqual(await claim(other, NOW), []);
      await queue.releaseClaims();
      assert.equal((await claim(other, NOW)).length, 2);
      await queue.releaseClaims();
      assert.deepEqual(await claim(queue, NOW), [], "another's claims are not released");
      await other.releaseClaims();
      assert.equal((await claim(queue, NOW)).length, 2);
      await fixture.close();
    });

    it('never gives one row to two claimants claiming at once, and together they claim every due row', async () => {
      const fixture = await open();
      const other = await fixture.anotherQueue();
      const { deviceIds } = await queuedForDevices(fixture, 24);
      const claimed: number[] = [];
      // As two nodes' dispatchers: both claim at the same moment, then settle what they got.
      const work = async (queue: PushQueueStorage) => {
        const pushes = await claim(queue, NOW, 2);
        claimed.push(...pushes.map((push) => push.id));
        for (const push of pushes) await queue.settlePush(push, 'sent');
        return pushes.length;
      };
      for (let round = 0; round < 30; round++) {
        const got = await Promise.all([work(fixture.queue), work(other)]);
        if (got[0] + got[1] === 0) break;
      }
      assert.equal(claimed.length, deviceIds.length, 'each row once');
      assert.equal(new Set(claimed).size, deviceIds.length);
      assert.equal((await fixture.admin.pushCounts()).sent, deviceIds.length);
      await fixture.close();
    });
  });
}
