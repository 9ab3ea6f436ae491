import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DeliveryStorage, OfflineRules } from '../../src/storage/ports/delivery.js';

/** The port under test and implementation-neutral seeding, made per engine by the runner. */
export interface DeliveryFixture {
  readonly storage: DeliveryStorage;
  user(name: string): Promise<number>;
  device(userId: number): Promise<number>;
  /** A group thread of these users (all current members). */
  thread(userIds: readonly number[]): Promise<number>;
  /** Stores a message as the message path does (next seq; inbox rows for the members' devices not marked live, the sender's excepted); resolves to its id and seq. */
  send(threadId: number, senderUserId: number, senderDeviceId: number, now: number): Promise<{ id: number; seq: number }>;
  /** The device acknowledged the thread up to seq (its cursor moves, its inbox rows go). */
  acknowledge(deviceId: number, threadId: number, seq: number): Promise<void>;
  /** The same storage on another connection to the same database, as another node (or process) has: its own transactions, its own group commit. */
  anotherNode(): Promise<DeliveryStorage>;
  close(): Promise<void>;
}

const rules = (overrides: Partial<OfflineRules> = {}): OfflineRules => ({
  readDiffusionAbove: 100,
  maxMessages: 1_000,
  push: { apns: false, fcm: false },
  now: 5_000,
  ...overrides,
});

interface Pair {
  readonly f: DeliveryFixture;
  readonly alice: number;
  readonly bob: number;
  readonly alicePhone: number;
  readonly bobPhone: number;
  readonly thread: number;
}

async function pair(open: () => Promise<DeliveryFixture>): Promise<Pair> {
  const f = await open();
  const alice = await f.user('alice');
  const bob = await f.user('bob');
  const alicePhone = await f.device(alice);
  const bobPhone = await f.device(bob);
  const thread = await f.thread([alice, bob]);
  return { f, alice, bob, alicePhone, bobPhone, thread };
}

/** What every DeliveryStorage must do, whatever the engine. */
export function deliveryStorageContract(name: string, open: () => Promise<DeliveryFixture>): void {
  describe(`DeliveryStorage contract: ${name}`, () => {
    it("pages an offline device's inbox oldest first, after an id, at most a page; the sender's own device gets none", async () => {
      const { f, alice, alicePhone, bobPhone, thread } = await pair(open);
      const sent = [];
      for (let i = 0; i < 5; i++) sent.push(await f.send(thread, alice, alicePhone, 1_000 + i));
      const first = await f.storage.inboxPage(bobPhone, 0, 3);
      assert.deepEqual(first.messages.map((row) => row.seq), [1, 2, 3]);
      assert.equal(first.overflowed, false);
      const rest = await f.storage.inboxPage(bobPhone, first.messages.at(-1)?.id ?? 0, 3);
      assert.deepEqual(rest.messages.map((row) => row.id), sent.slice(3).map((m) => m.id));
      assert.deepEqual((await f.storage.inboxPage(alicePhone, 0, 10)).messages, []);
      assert.equal(first.followedThreadIds, undefined, 'a page with rows names no threads');
      await f.close();
    });

    it('the last, empty page names the threads the user is a current member of, from the same snapshot', async () => {
      const { f, alice, bob, alicePhone, bobPhone, thread } = await pair(open);
      const other = await f.thread([bob]);
      await f.thread([alice]);
      const message = await f.send(thread, alice, alicePhone, 1_000);
      const page = await f.storage.inboxPage(bobPhone, message.id, 10);
      assert.deepEqual({ messages: page.messages, followed: [...(page.followedThreadIds ?? [])].sort((a, b) => a - b) }, { messages: [], followed: [thread, other] });
      await f.close();
    });

    it('a live device gets no inbox rows; going offline writes what it did not acknowledge, and unmarks it', async () => {
      const { f, alice, alicePhone, bobPhone, thread } = await pair(open);
      assert.equal(await f.storage.isLive(bobPhone), false, 'not marked before it goes live');
      await f.storage.goLive(bobPhone);
      assert.equal(await f.storage.isLive(bobPhone), true);
      await f.send(thread, alice, alicePhone, 1_000);
      const second = await f.send(thread, alice, alicePhone, 1_001);
      const third = await f.send(thread, alice, alicePhone, 1_002);
      assert.deepEqual((await f.storage.inboxPage(bobPhone, 0, 10)).messages, [], 'live: no rows');
      await f.acknowledge(bobPhone, thread, 1);
      assert.deepEqual(await f.storage.goOffline(bobPhone, rules()), { wasLive: true, overflowed: false, pushesQueued: false });
      assert.equal(await f.storage.isLive(bobPhone), false, 'unmarked');
      assert.deepEqual((await f.storage.inboxPage(bobPhone, 0, 10)).messages.map((row) => row.id), [second.id, third.id]);
      const fourth = await f.send(thread, alice, alicePhone, 1_003);
      assert.deepEqual((await f.storage.inboxPage(bobPhone, third.id, 10)).messages.map((row) => row.id), [fourth.id], 'offline again: rows as messages are stored');
      assert.deepEqual(await f.storage.goOffline(bobPhone, rules()), { wasLive: false, overflowed: false, pushesQueued: false }, 'not live: nothing to hand over');
      await f.close();
    });

    it('going live twice keeps the first mark: nothing stored in between is lost', async () => {
      const { f, alice, alicePhone, bobPhone, thread } = await pair(open);
      await f.storage.goLive(bobPhone);
      const first = await f.send(thread, alice, alicePhone, 1_000);
      await f.storage.goLive(bobPhone);
      await f.storage.goOffline(bobPhone, rules());
      assert.deepEqual((await f.storage.inboxPage(bobPhone, 0, 10)).messages.map((row) => row.id), [first.id]);
      await f.close();
    });

    it('a handover past the bound drops the inbox and flags the device; a page then says so', async () => {
      const { f, alice, alicePhone, bobPhone, thread } = await pair(open);
      await f.storage.goLive(bobPhone);
      for (let i = 0; i < 3; i++) await f.send(thread, alice, alicePhone, 1_000 + i);
      assert.deepEqual(await f.storage.goOffline(bobPhone, rules({ maxMessages: 2 })), { wasLive: true, overflowed: true, pushesQueued: false });
      assert.deepEqual(await f.storage.inboxPage(bobPhone, 0, 10), { messages: [], overflowed: true, followedThreadIds: [thread] });
      assert.equal(await f.storage.inboxOverflowed(bobPhone), true);
      assert.equal(await f.storage.inboxOverflowed(alicePhone), false);
      await f.close();
    });

    it('queues notifications on the handover when a push provider is configured', async () => {
      const { f, alice, alicePhone, bobPhone, thread } = await pair(open);
      await f.storage.goLive(bobPhone);
      await f.send(thread, alice, alicePhone, 1_000);
      const outcome = await f.storage.goOffline(bobPhone, rules({ push: { apns: true, fcm: false } }));
      assert.deepEqual(outcome, { wasLive: true, overflowed: false, pushesQueued: true });
      await f.close();
    });

    it('recovers every device still marked live at start-up, in one unit', async () => {
      const { f, alice, alicePhone, bobPhone, thread } = await pair(open);
      await f.storage.goLive(bobPhone);
      await f.storage.goLive(alicePhone);
      const message = await f.send(thread, alice, alicePhone, 1_000);
      assert.equal(await f.storage.recoverLiveDevices(rules()), 2);
      assert.deepEqual((await f.storage.inboxPage(bobPhone, 0, 10)).messages.map((row) => row.id), [message.id]);
      assert.equal(await f.storage.recoverLiveDevices(rules()), 0, 'none are live any more');
      await f.close();
    });

    it('expires inboxes holding rows older than the cutoff, flagging those devices only', async () => {
      const { f, alice, bob, alicePhone, bobPhone, thread } = await pair(open);
      const bobLaptop = await f.device(bob);
      await f.send(thread, alice, alicePhone, 1_000);
      await f.acknowledge(bobLaptop, thread, 1);
      await f.send(thread, alice, alicePhone, 9_000);
      assert.deepEqual(await f.storage.expireInboxes(5_000), [bobPhone]);
      assert.deepEqual(await f.storage.inboxPage(bobPhone, 0, 10), { messages: [], overflowed: true, followedThreadIds: [thread] });
      assert.equal((await f.storage.inboxPage(bobLaptop, 0, 10)).messages.length, 1, 'its one row is newer than the cutoff');
      assert.deepEqual(await f.storage.expireInboxes(5_000), []);
      await f.close();
    });

    it('two handovers of one going offline (the old link closing, the new one opening, maybe on two nodes) write it once: the second sees the first', async () => {
      const { f, alice, alicePhone, bobPhone, thread } = await pair(open);
      await f.storage.goLive(bobPhone);
      const message = await f.send(thread, alice, alicePhone, 1_000);
      const both = await Promise.all([f.storage.goOffline(bobPhone, rules({ push: { apns: true, fcm: false } })), f.storage.goOffline(bobPhone, rules({ push: { apns: true, fcm: false } }))]);
      assert.deepEqual(
        both.map((outcome) => outcome.wasLive).sort(),
        [false, true],
        'one handed over, the other found the device unmarked',
      );
      assert.deepEqual(both.filter((outcome) => outcome.pushesQueued).length, 1, 'notifications queued once');
      assert.deepEqual((await f.storage.inboxPage(bobPhone, 0, 10)).messages.map((message) => message.id), [message.id], 'the row written once');
      assert.deepEqual(await f.storage.goOffline(bobPhone, rules({ maxMessages: 0 })), { wasLive: false, overflowed: false, pushesQueued: false }, 'not live: nothing written, not even the flag');
      assert.equal(await f.storage.inboxOverflowed(bobPhone), false);
      await f.close();
    });

    it('two nodes handing over one device at once (the old node closing, the new one opening) write it once: units for one device are serialised between them', async () => {
      const { f, alice, alicePhone, bobPhone, thread } = await pair(open);
      const other = await f.anotherNode();
      const withPush = rules({ push: { apns: true, fcm: false } });
      const sent: number[] = [];
      // A few rounds: each one a real race between two connections' transactions.
      for (let round = 0; round < 5; round++) {
        await (round % 2 === 0 ? f.storage : other).goLive(bobPhone);
        sent.push((await f.send(thread, alice, alicePhone, 1_000 + round)).id);
        const both = await Promise.all([f.storage.goOffline(bobPhone, withPush), other.goOffline(bobPhone, withPush)]);
        assert.deepEqual(both.map((outcome) => outcome.wasLive).sort(), [false, true], `round ${round}: one handed over, the other found the device unmarked`);
        assert.equal(both.filter((outcome) => outcome.pushesQueued).length, 1, `round ${round}: notifications queued once`);
        assert.equal(await other.isLive(bobPhone), false);
      }
      assert.deepEqual((await other.inboxPage(bobPhone, 0, 100)).messages.map((message) => message.id), sent, 'each message written once, seen alike from both');
      await f.close();
    });

    it('a write resolves after it is committed: a read made then sees it', async () => {
      const { f, alice, alicePhone, bobPhone, thread } = await pair(open);
      await f.storage.goLive(bobPhone);
      await f.send(thread, alice, alicePhone, 1_000);
      const offline = f.storage.goOffline(bobPhone, rules());
      await offline;
      assert.equal((await f.storage.inboxPage(bobPhone, 0, 10)).messages.length, 1);
      await f.close();
    });
  });
}
