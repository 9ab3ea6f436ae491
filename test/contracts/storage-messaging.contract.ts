import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { DeliveryStorage } from '../../src/storage/ports/delivery.js';
import type { HistoryAnchor, HistoryStorage } from '../../src/storage/ports/history.js';
import type { AppendMessageInput, AppendOutcome, MessagingStorage, StoredMessage } from '../../src/storage/ports/messaging.js';
import type { ThreadStorage } from '../../src/storage/ports/threads.js';
import { messageChangesContract } from './storage-message-changes.contract.js';
import { messageReadsContract } from './storage-message-reads.contract.js';
import { receiptsContract } from './storage-receipts.contract.js';

/** What the engine under test is configured with. */
export interface FixtureSettings {
  /** Groups with more current members write no inbox rows. */
  readonly readDiffusionAbove: number;
  /** A push provider is configured (both): messages queue push rows. Default: none. */
  readonly push?: boolean;
}

/**
 * The ports under test over one fresh database, and seeding helpers that every
 * engine implements its own way (they are not part of any port).
 */
export interface MessagingFixture {
  readonly messaging: MessagingStorage;
  readonly history: HistoryStorage;
  readonly threads: ThreadStorage;
  /** The inbox drain reads messages through it. */
  readonly delivery: DeliveryStorage;
  /** The message path's storage of a second node (process) on the same database: for races between nodes. */
  otherNode(): Promise<{ readonly messaging: MessagingStorage; readonly threads: ThreadStorage }>;
  user(name: string): Promise<number>;
  /** A device of the user; `approved`: it published keys certified by the account key (an e2e sender and recipient). */
  device(userId: number, options?: { approved?: boolean }): Promise<number>;
  revokeDevice(deviceId: number): Promise<void>;
  /** The device follows its threads live: no inbox rows for it. */
  goLive(deviceId: number): Promise<void>;
  /** The message ids in the device's offline inbox, oldest first. */
  inbox(deviceId: number): Promise<number[]>;
  /** Drops the device's inbox and flags it to sync by cursors (as an overflow does). */
  overflow(deviceId: number): Promise<void>;
  /** Whether the device is flagged to sync by cursors. */
  overflowed(deviceId: number): Promise<boolean>;
  /**
   * Test seeding, raw SQL: a complete upload of the user's (what the upload
   * endpoint leaves behind), for sends that carry attachments. Its id.
   */
  seedUpload(userId: number, deviceId: number, id: string): Promise<string>;
  /** Every attachment_refs row as [upload id, thread id, seq], sorted. */
  attachmentRefs(): Promise<Array<[string, number, number]>>;
  /** Raw SQL: what a message's row holds of content (erasure checks read the row itself, not a port's view of it). */
  messageRow(messageId: number): Promise<{ body: string; attachments: string | null; mentions: string | null; reactions: string | null } | undefined>;
  /** Raw SQL: the threads with news for the push worker, as [thread id, message id], by thread. */
  pushNoted(): Promise<Array<[number, number]>>;
  close(): Promise<void>;
}

const NOW = 1_000_000;

/**
 * The contract of the message path's storage: run on SQLite here, on
 * PostgreSQL by its own runner. It checks what the ports promise (seqs without
 * gaps, idempotency, refusals, inbox rows, results only after commit), not how.
 */
export function messagingStorageContract(name: string, open: (settings: FixtureSettings) => Promise<MessagingFixture>): void {
  describe(`messaging storage contract: ${name}`, () => {
    const opened: MessagingFixture[] = [];
    after(async () => {
      for (const fixture of opened) await fixture.close();
    });

    /** Alice and bob (one device each) in a direct thread, plus carol outside it. */
    async function world(settings: FixtureSettings = { readDiffusionAbove: 50 }) {
      const f = await open(settings);
      opened.push(f);
      const [alice, bob, carol] = [await f.user('alice'), await f.user('bob'), await f.user('carol')];
      const [aliceDevice, bobDevice, carolDevice] = [await f.device(alice), await f.device(bob), await f.device(carol)];
      const { threadId } = await f.threads.openDirect({ userIds: [alice, bob], createdBy: alice, now: NOW });
      let n = 0;
      const text = (input: Partial<AppendMessageInput> = {}): AppendMessageInput => ({
        threadId,
        senderUserId: alice,
        senderDeviceId: aliceDevice,
        clientMsgId: `c${++n}`,
        content: { kind: 'text' },
        bodyJson: '{"text":"hi"}',
        now: NOW,
        requireE2eEverywhere: false,
        ...input,
      });
      return { f, alice, bob, carol, aliceDevice, bobDevice, carolDevice, threadId, text };
    }

    const stored = (outcome: AppendOutcome): StoredMessage => {
      assert.equal(outcome.kind, 'stored', JSON.stringify(outcome));
      return (outcome as { message: StoredMessage }).message;
    };

    it('gives concurrent appends to one thread the seqs 1..n, without gaps, each once', async () => {
      const w = await world();
      const outcomes = await Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          w.f.messaging.appendMessage(i % 2 === 0 ? w.text() : w.text({ senderUserId: w.bob, senderDeviceId: w.bobDevice })),
        ),
      );
      const seqs = outcomes.map((o) => stored(o).seq).sort((a, b) => a - b);
      assert.deepEqual(seqs, Array.from({ length: 60 }, (_, i) => i + 1));
      const page = await w.f.history.page({ userId: w.bob, threadId: w.threadId, anchor: { after: 0 }, size: 100 });
      assert.deepEqual(
        page?.messages.map((m) => m.seq),
        seqs,
      );
    });

    it('gives appends to one thread racing from two nodes the seqs 1..n between them, without gaps, each once', async () => {
      const w = await world();
      const other = await w.f.otherNode();
      const outcomes = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          i % 2 === 0 ? w.f.messaging.appendMessage(w.text()) : other.messaging.appendMessage(w.text({ senderUserId: w.bob, senderDeviceId: w.bobDevice })),
        ),
      );
      const seqs = outcomes.map((o) => stored(o).seq).sort((a, b) => a - b);
      assert.deepEqual(seqs, Array.from({ length: 40 }, (_, i) => i + 1));
      const page = await w.f.history.page({ userId: w.alice, threadId: w.threadId, anchor: { after: 0 }, size: 100 });
      assert.deepEqual(page?.messages.map((m) => m.seq), seqs);
    });

    it('stores a send racing itself from two nodes once: the other gets the duplicate', async () => {
      const w = await world();
      const other = await w.f.otherNode();
      const inputs = Array.from({ length: 8 }, (_, i) => w.text({ clientMsgId: `race${i}` }));
      const pairs = await Promise.all(inputs.map((input) => Promise.all([w.f.messaging.appendMessage(input), other.messaging.appendMessage(input)])));
      for (const [here, there] of pairs) {
        assert.deepEqual([here.kind, there.kind].sort(), ['duplicate', 'stored'], JSON.stringify([here, there]));
        assert.deepEqual((here as { message: StoredMessage }).message, (there as { message: StoredMessage }).message);
      }
      const page = await w.f.history.page({ userId: w.alice, threadId: w.threadId, anchor: { after: 0 }, size: 100 });
      assert.deepEqual(page?.messages.map((m) => m.seq), [1, 2, 3, 4, 5, 6, 7, 8], 'one message per client id, no gap');
    });

    it('stores a client id racing into two threads from two nodes once: the other send is refused, and neither thread has a gap', async () => {
      const w = await world();
      const other = await w.f.otherNode();
      const { threadId: elsewhere } = await w.f.threads.openDirect({ userIds: [w.alice, w.carol], createdBy: w.alice, now: NOW });
      // Each node's sends go to one thread only: the two nodes share no thread, so nothing orders them but the client id.
      const inputs = Array.from({ length: 8 }, (_, i) => w.text({ clientMsgId: `race${i}` }));
      const pairs = await Promise.all(
        inputs.map((input) => Promise.all([w.f.messaging.appendMessage(input), other.messaging.appendMessage({ ...input, threadId: elsewhere })])),
      );
      for (const [here, there] of pairs) {
        assert.deepEqual([here.kind, there.kind].sort(), ['refused', 'stored'], JSON.stringify([here, there]));
        assert.deepEqual(here.kind === 'refused' ? here : there, { kind: 'refused', reason: 'client_id_in_other_thread' });
      }
      const here = await w.f.history.page({ userId: w.alice, threadId: w.threadId, anchor: { after: 0 }, size: 100 });
      const there = await w.f.history.page({ userId: w.alice, threadId: elsewhere, anchor: { after: 0 }, size: 100 });
      assert.equal((here?.messages.length ?? 0) + (there?.messages.length ?? 0), 8, 'one message per client id');
      for (const page of [here, there]) assert.deepEqual(page?.messages.map((m) => m.seq), page?.messages.map((_, i) => i + 1));
    });

    it('decides the sends of one turn one after another: stores, refusals and a client id used twice in the same turn', async () => {
      const w = await world();
      const { threadId: elsewhere } = await w.f.threads.openDirect({ userIds: [w.alice, w.carol], createdBy: w.alice, now: NOW });
      // All in the same turn: on SQLite one group commit, on PostgreSQL one batch.
      const outcomes = await Promise.all([
        w.f.messaging.appendMessage(w.text({ clientMsgId: 'a' })),
        w.f.messaging.appendMessage(w.text({ clientMsgId: 'b', senderUserId: w.carol, senderDeviceId: w.carolDevice })),
        w.f.messaging.appendMessage(w.text({ clientMsgId: 'a', now: NOW + 1 })),
        w.f.messaging.appendMessage(w.text({ clientMsgId: 'a', threadId: elsewhere })),
        w.f.messaging.appendMessage(w.text({ clientMsgId: 'c', requireE2eEverywhere: true })),
        w.f.messaging.appendMessage(w.text({ clientMsgId: 'd', threadId: elsewhere })),
        w.f.messaging.appendMessage(w.text({ clientMsgId: 'e', senderUserId: w.bob, senderDeviceId: w.bobDevice })),
      ]);
      const first = stored(outcomes[0] as AppendOutcome);
      assert.equal(first.seq, 1);
      assert.deepEqual(outcomes.slice(1, 5), [
        { kind: 'refused', reason: 'no_thread' },
        { kind: 'duplicate', message: first },
        { kind: 'refused', reason: 'client_id_in_other_thread' },
        { kind: 'refused', reason: 'encryption_required' },
      ]);
      assert.equal(stored(outcomes[5] as AppendOutcome).seq, 1, 'the other thread has its own seqs');
      assert.equal(stored(outcomes[6] as AppendOutcome).seq, 2);
      assert.deepEqual(await w.f.inbox(w.bobDevice), [first.id], "bob's inbox: alice's message, not his own");
      assert.deepEqual(await w.f.messaging.markRead({ userId: w.bob, threadId: w.threadId, seq: 0 }), { kind: 'done', moved: false, authors: [], readSeq: 2, unread: 0, totalUnread: 0 });
      assert.equal(await w.f.messaging.totalUnread(w.alice), 1, "bob's message is alice's one unread");
    });

    it("orders a removal on one node and the removed member's sends on another: stored before the removal, refused after it", async () => {
      const w = await world();
      const other = await w.f.otherNode();
      const { threadId } = await w.f.threads.createGroup({
        title: 'g',
        actor: { userId: w.alice, deviceId: w.aliceDevice },
        memberIds: [w.bob],
        e2eRequired: false,
        event: { event: 'group_created' },
        now: NOW,
      });
      const bobs = () => w.text({ threadId, senderUserId: w.bob, senderDeviceId: w.bobDevice });
      const early = await Promise.all(Array.from({ length: 10 }, () => other.messaging.appendMessage(bobs())));
      const [removed, ...late] = await Promise.all([
        w.f.threads.changeGroup({
          threadId,
          actor: { userId: w.alice, deviceId: w.aliceDevice },
          expect: { actorRole: 'owner', members: [{ userId: w.bob, role: 'member' }] },
          change: { kind: 'end', userId: w.bob, newOwner: null, event: { event: 'member_removed' } },
          now: NOW,
        }),
        ...Array.from({ length: 10 }, () => other.messaging.appendMessage(bobs())),
      ]);
      assert.equal(removed?.kind, 'changed');
      const leftAt = (removed as { message: StoredMessage }).message.seq;
      for (const outcome of [...early, ...(late as AppendOutcome[])]) {
        if (outcome.kind === 'stored') assert.ok(outcome.message.seq < leftAt, `seq ${outcome.message.seq} stored after the removal at ${leftAt}`);
        else assert.deepEqual(outcome, { kind: 'refused', reason: 'not_member' });
      }
      const page = await w.f.history.page({ userId: w.alice, threadId, anchor: { after: 0 }, size: 100 });
      assert.deepEqual(page?.messages.map((m) => m.seq), Array.from({ length: leftAt }, (_, i) => i + 1), 'no gap, nothing after the removal');
    });

    it('lists threads as the user sees them: last visible message, peer, members, unread cursors, settings', async () => {
      const w = await world();
      const first = stored(await w.f.messaging.appendMessage(w.text()));
      const { threadId: group } = await w.f.threads.createGroup({
        title: 'g',
        actor: { userId: w.alice, deviceId: w.aliceDevice },
        memberIds: [w.bob, w.carol],
        e2eRequired: true,
        event: { event: 'group_created' },
        now: NOW + 10,
      });
      assert.equal(await w.f.threads.updateSettings({ threadId: w.threadId, userId: w.bob, muted: true, label: 'A' }), true);
      assert.equal(await w.f.threads.updateSettings({ threadId: w.threadId, userId: w.bob, muted: undefined, label: undefined }), true, 'undefined leaves both');
      assert.equal(await w.f.threads.updateSettings({ threadId: w.threadId, userId: w.carol, muted: true, label: null }), false);
      const list = await w.f.threads.list(w.bob);
      assert.deepEqual(list.map((t) => t.id), [group, w.threadId], 'most recent activity first');
      const [groupSummary, direct] = list;
      assert.deepEqual(
        { ...direct, lastMessage: direct?.lastMessage?.id },
        {
          id: w.threadId,
          kind: 'direct',
          title: null,
          createdAt: NOW,
          lastSeq: 1,
          e2eRequired: false,
          role: 'member',
          joinedSeq: 0,
          leftSeq: null,
          readSeq: 0,
          muted: true,
          label: 'A',
          memberCount: 2,
          lastMessage: first.id,
          peer: { id: w.alice, username: 'alice', displayName: 'alice' },
          uncounted: { atStart: 0, atEnd: 0 },
        },
      );
      assert.deepEqual([groupSummary?.kind, groupSummary?.title, groupSummary?.e2eRequired, groupSummary?.memberCount, groupSummary?.peer, groupSummary?.lastMessage?.kind], ['group', 'g', true, 3, null, 'system']);
      assert.deepEqual(await w.f.threads.groupState(group, w.carol), {
        kind: 'group',
        e2eRequired: true,
        actor: { role: 'member', left: false },
        members: [
          { userId: w.alice, role: 'owner' },
          { userId: w.bob, role: 'member' },
          { userId: w.carol, role: 'member' },
        ].sort((a, b) => a.userId - b.userId),
      });
      assert.equal(await w.f.threads.groupState(w.threadId, w.carol), undefined);
      assert.equal((await w.f.threads.userByUsername('ALICE'))?.id, w.alice, 'usernames compare without case');
      assert.equal((await w.f.threads.userById(w.bob))?.username, 'bob');
      assert.equal(await w.f.threads.userById(999_999), undefined);
    });

    it('stores bodies and client ids exactly as sent: quotes, backslashes, commas, braces, NULL, unicode', async () => {
      const w = await world();
      const odd = ['NULL', 'a,b', '{"x"}', 'back\\slash "quoted"', 'ünï 👋', ' '];
      const outcomes = await Promise.all(odd.map((text) => w.f.messaging.appendMessage(w.text({ clientMsgId: text, bodyJson: JSON.stringify({ text }) }))));
      const page = await w.f.history.page({ userId: w.bob, threadId: w.threadId, anchor: { after: 0 }, size: 10 });
      assert.deepEqual(page?.messages, outcomes.map(stored));
      assert.deepEqual(page?.messages.map((m) => [m.clientMsgId, JSON.parse(m.bodyJson).text]), odd.map((text) => [text, text]));
    });

    it('resolves only after commit: what it reports is readable at once', async () => {
      const w = await world();
      const message = stored(await w.f.messaging.appendMessage(w.text()));
      const page = await w.f.history.page({ userId: w.bob, threadId: w.threadId, anchor: { latest: true }, size: 10 });
      assert.deepEqual(page?.messages, [message]);
      assert.deepEqual(await w.f.history.locate(w.bob, message.id), { threadId: w.threadId, seq: 1, from: 0, to: 1 });
    });

    it('answers a resend with the stored message and stores one row, even when both race', async () => {
      const w = await world();
      const input = w.text({ clientMsgId: 'same' });
      const [first, second] = await Promise.all([w.f.messaging.appendMessage(input), w.f.messaging.appendMessage(input)]);
      assert.equal(first.kind, 'stored');
      assert.deepEqual(second, { kind: 'duplicate', message: stored(first) });
      assert.deepEqual(await w.f.messaging.appendMessage({ ...input, now: NOW + 5 }), { kind: 'duplicate', message: stored(first) });
      const page = await w.f.history.page({ userId: w.alice, threadId: w.threadId, anchor: { after: 0 }, size: 10 });
      assert.equal(page?.messages.length, 1);
    });

    it('refuses a client id used in another thread', async () => {
      const w = await world();
      const { threadId: other } = await w.f.threads.openDirect({ userIds: [w.alice, w.carol], createdBy: w.alice, now: NOW });
      stored(await w.f.messaging.appendMessage(w.text({ clientMsgId: 'x' })));
      assert.deepEqual(await w.f.messaging.appendMessage(w.text({ clientMsgId: 'x', threadId: other })), { kind: 'refused', reason: 'client_id_in_other_thread' });
    });

    it('refuses a thread that does not exist and one the sender was never in, storing nothing', async () => {
      const w = await world();
      assert.deepEqual(await w.f.messaging.appendMessage(w.text({ threadId: 999_999 })), { kind: 'refused', reason: 'no_thread' });
      assert.deepEqual(await w.f.messaging.appendMessage(w.text({ senderUserId: w.carol, senderDeviceId: w.carolDevice })), { kind: 'refused', reason: 'no_thread' });
      const page = await w.f.history.page({ userId: w.alice, threadId: w.threadId, anchor: { after: 0 }, size: 10 });
      assert.deepEqual(page?.messages, []);
    });

    it('refuses a member who left, but still answers their resend of a stored message', async () => {
      const w = await world();
      const { threadId, message: created } = await w.f.threads.createGroup({
        title: 'g',
        actor: { userId: w.alice, deviceId: w.aliceDevice },
        memberIds: [w.bob],
        e2eRequired: false,
        event: { event: 'group_created' },
        now: NOW,
      });
      assert.equal(created.seq, 1);
      const bobs = { threadId, senderUserId: w.bob, senderDeviceId: w.bobDevice };
      const first = stored(await w.f.messaging.appendMessage(w.text({ ...bobs, clientMsgId: 'b1' })));
      const left = await w.f.threads.changeGroup({
        threadId,
        actor: { userId: w.bob, deviceId: w.bobDevice },
        expect: { actorRole: 'member' },
        change: { kind: 'end', userId: w.bob, newOwner: null, event: { event: 'member_left' } },
        now: NOW,
      });
      assert.equal(left.kind, 'changed');
      assert.deepEqual(await w.f.messaging.appendMessage(w.text({ ...bobs, clientMsgId: 'b2' })), { kind: 'refused', reason: 'not_member' });
      assert.deepEqual(await w.f.messaging.appendMessage(w.text({ ...bobs, clientMsgId: 'b1' })), { kind: 'duplicate', message: first });
    });

    it('refuses a device whose token no longer works, before anything else', async () => {
      const w = await world();
      const input = w.text({ clientMsgId: 'r' });
      stored(await w.f.messaging.appendMessage(input));
      await w.f.revokeDevice(w.aliceDevice);
      const outcome = await w.f.messaging.appendMessage(input);
      assert.deepEqual(outcome, { kind: 'signed_out', state: { revoked: true, disabled: false, deleted: false } });
    });

    it('refuses plaintext where encryption is required (by the thread or everywhere)', async () => {
      const w = await world();
      assert.deepEqual(await w.f.messaging.appendMessage(w.text({ requireE2eEverywhere: true })), { kind: 'refused', reason: 'encryption_required' });
      const changed = await w.f.threads.changeGroup({
        threadId: w.threadId,
        actor: { userId: w.alice, deviceId: w.aliceDevice },
        expect: { actorRole: 'member' },
        change: { kind: 'require_e2e', event: { event: 'e2e_required' } },
        now: NOW,
      });
      assert.equal(changed.kind === 'changed' && changed.message?.seq, 1);
      assert.deepEqual(await w.f.messaging.appendMessage(w.text()), { kind: 'refused', reason: 'encryption_required' });
    });

    it('takes an e2e message sealed to exactly the approved devices, and names the missing and extra ones otherwise', async () => {
      const w = await world();
      const [a1, a2, b1] = [await w.f.device(w.alice, { approved: true }), await w.f.device(w.alice, { approved: true }), await w.f.device(w.bob, { approved: true })];
      const e2e = (sealedTo: readonly number[] | 'invalid', senderDeviceId = a1) => w.text({ senderDeviceId, content: { kind: 'e2e', sealedTo } });
      assert.deepEqual(await w.f.messaging.appendMessage(e2e([a1, a2], a1)), { kind: 'refused', reason: 'devices_changed', missing: [b1], extra: [] });
      assert.deepEqual(await w.f.messaging.appendMessage(e2e([a1, a2, b1, 4242])), { kind: 'refused', reason: 'devices_changed', missing: [], extra: [4242] });
      assert.deepEqual(await w.f.messaging.appendMessage(e2e('invalid')), { kind: 'refused', reason: 'envelope_invalid' });
      assert.deepEqual(await w.f.messaging.appendMessage(e2e([a1, a2, b1], w.aliceDevice)), { kind: 'refused', reason: 'device_unapproved' });
      const message = stored(await w.f.messaging.appendMessage(e2e([b1, a2, a1])));
      assert.equal(message.kind, 'e2e');
    });

    it('writes inbox rows for the devices not live, none for the sender or live ones, none above read diffusion', async () => {
      const w = await world({ readDiffusionAbove: 2 });
      const bobLive = await w.f.device(w.bob);
      await w.f.goLive(bobLive);
      const message = stored(await w.f.messaging.appendMessage(w.text()));
      assert.deepEqual(await w.f.inbox(w.bobDevice), [message.id]);
      assert.deepEqual(await w.f.inbox(bobLive), []);
      assert.deepEqual(await w.f.inbox(w.aliceDevice), []);
      const { threadId } = await w.f.threads.createGroup({
        title: 'big',
        actor: { userId: w.alice, deviceId: w.aliceDevice },
        memberIds: [w.bob, w.carol],
        e2eRequired: false,
        event: { event: 'group_created' },
        now: NOW,
      });
      stored(await w.f.messaging.appendMessage(w.text({ threadId })));
      assert.deepEqual(await w.f.inbox(w.carolDevice), [], 'three members is above read diffusion (2)');
    });

    it('moves read and delivered cursors forward only, within what the member may see', async () => {
      const w = await world();
      for (let i = 0; i < 3; i++) stored(await w.f.messaging.appendMessage(w.text()));
      assert.deepEqual(await w.f.messaging.totalUnread(w.bob), 3);
      assert.deepEqual(await w.f.messaging.markRead({ userId: w.bob, threadId: w.threadId, seq: 99 }), {
        kind: 'done',
        moved: true,
        authors: [w.alice],
        readSeq: 3,
        unread: 0,
        totalUnread: 0,
      });
      assert.deepEqual(await w.f.messaging.markRead({ userId: w.bob, threadId: w.threadId, seq: 1 }), { kind: 'done', moved: false, authors: [], readSeq: 3, unread: 0, totalUnread: 0 });
      assert.deepEqual(await w.f.messaging.markDelivered({ userId: w.bob, deviceId: w.bobDevice, threadId: w.threadId, seq: 2 }), { kind: 'done', seq: 2, moved: true, authors: [w.alice] });
      assert.deepEqual(await w.f.inbox(w.bobDevice).then((ids) => ids.length), 1, 'acked rows leave the inbox');
      assert.deepEqual(await w.f.messaging.markDelivered({ userId: w.carol, deviceId: w.carolDevice, threadId: w.threadId, seq: 2 }), { kind: 'refused', reason: 'no_thread' });
      assert.equal(await w.f.messaging.membership(w.threadId, w.carol), 'none');
      assert.equal(await w.f.messaging.membership(w.threadId, w.bob), 'member');
    });

    it('pages before, after, at the latest and around a message, within what the member may see', async () => {
      const w = await world();
      for (let i = 0; i < 10; i++) stored(await w.f.messaging.appendMessage(w.text()));
      const seqs = async (anchor: HistoryAnchor, size: number) =>
        (await w.f.history.page({ userId: w.bob, threadId: w.threadId, anchor, size }))?.messages.map((m) => m.seq);
      assert.deepEqual(await seqs({ before: 5 }, 3), [2, 3, 4]);
      assert.deepEqual(await seqs({ after: 7 }, 5), [8, 9, 10]);
      assert.deepEqual(await seqs({ latest: true }, 3), [8, 9, 10]);
      assert.deepEqual(await seqs({ around: 5 }, 4), [4, 5, 6, 7]);
      assert.deepEqual(await seqs({ around: 1 }, 4), [1, 2, 3, 4]);
      assert.deepEqual(await seqs({ around: 99 }, 3), [9, 10]);
      assert.deepEqual(await seqs({ before: 99 }, 2), [9, 10]);
      assert.equal(await w.f.history.page({ userId: w.carol, threadId: w.threadId, anchor: { latest: true }, size: 3 }), undefined, 'never a member');
      // A member who left sees up to where they left.
      const { threadId, message: created } = await w.f.threads.createGroup({
        title: 'g',
        actor: { userId: w.alice, deviceId: w.aliceDevice },
        memberIds: [w.bob],
        e2eRequired: false,
        event: { event: 'group_created' },
        now: NOW,
      });
      await w.f.threads.changeGroup({
        threadId,
        actor: { userId: w.bob, deviceId: w.bobDevice },
        expect: { actorRole: 'member' },
        change: { kind: 'end', userId: w.bob, newOwner: null, event: { event: 'member_left' } },
        now: NOW,
      });
      stored(await w.f.messaging.appendMessage(w.text({ threadId })));
      const page = await w.f.history.page({ userId: w.bob, threadId, anchor: { after: 0 }, size: 10 });
      assert.deepEqual({ seqs: page?.messages.map((m) => m.seq), from: page?.from, to: page?.to }, { seqs: [created.seq, 2], from: 0, to: 2 });
    });

    it('syncs what a device lacks after its cursors, a page per thread', async () => {
      const w = await world();
      for (let i = 0; i < 5; i++) stored(await w.f.messaging.appendMessage(w.text()));
      const synced = await w.f.history.sync({ userId: w.bob, deviceId: w.bobDevice, cursors: new Map([[w.threadId, 2]]), pageMax: 2 });
      assert.deepEqual(
        synced.map((t) => ({ ...t, messages: t.messages.map((m) => m.seq) })),
        [{ threadId: w.threadId, lastSeq: 5, messages: [3, 4], hasMore: true }],
      );
    });

    it('a sync clears the overflow flag without losing a message stored meanwhile: it is in the answer or the inbox, or the flag stays', async () => {
      const w = await world();
      await w.f.overflow(w.bobDevice);
      // The send and the sync in the same turn (on SQLite: one group commit), the send first.
      const [outcome, synced] = await Promise.all([
        w.f.messaging.appendMessage(w.text()),
        w.f.history.sync({ userId: w.bob, deviceId: w.bobDevice, cursors: undefined, pageMax: 100 }),
      ]);
      const { id } = stored(outcome);
      const inSync = synced.some((t) => t.messages.some((m) => m.id === id));
      const inInbox = (await w.f.inbox(w.bobDevice)).includes(id);
      const stillFlagged = await w.f.overflowed(w.bobDevice);
      assert.ok(inSync || inInbox || stillFlagged, `message ${id} is in no sync answer, no inbox row, and the overflow flag is cleared`);
      assert.equal(stillFlagged, false, 'the sync answers the flag');
    });

    it('stores a send with attachments and its references in the same unit, and every read returns them: history, around, inbox, sync, thread list', async () => {
      const w = await world();
      const [photo, file] = [await w.f.seedUpload(w.alice, w.aliceDevice, 'upload-photo-000000001'), await w.f.seedUpload(w.alice, w.aliceDevice, 'upload-file-0000000002')];
      const plain = stored(await w.f.messaging.appendMessage(w.text()));
      assert.equal(plain.attachmentsJson, null);
      const json = JSON.stringify([{ id: photo, name: 'photo.jpg', size: 1000 }, { id: file }]);
      const message = stored(await w.f.messaging.appendMessage(w.text({ bodyJson: 'null', attachments: { json, uploadIds: [photo, file] } })));
      assert.equal(message.attachmentsJson, json);
      assert.equal(message.bodyJson, 'null');
      assert.deepEqual(await w.f.attachmentRefs(), [
        [file, w.threadId, 2],
        [photo, w.threadId, 2],
      ]);
      const byId = (messages: readonly StoredMessage[]) => new Map(messages.map((m) => [m.id, m]));
      const page = await w.f.history.page({ userId: w.bob, threadId: w.threadId, anchor: { after: 0 }, size: 10 });
      assert.deepEqual(page?.messages.map((m) => [m.seq, m.attachmentsJson, m.bodyJson]), [
        [1, null, '{"text":"hi"}'],
        [2, json, 'null'],
      ]);
      const around = await w.f.history.page({ userId: w.bob, threadId: w.threadId, anchor: { around: 2 }, size: 10 });
      assert.equal(byId(around?.messages ?? []).get(message.id)?.attachmentsJson, json);
      const inbox = await w.f.delivery.inboxPage(w.bobDevice, 0, 10);
      assert.deepEqual(inbox.messages.map((m) => [m.id, m.attachmentsJson]), [
        [plain.id, null],
        [message.id, json],
      ]);
      const synced = await w.f.history.sync({ userId: w.bob, deviceId: w.bobDevice, cursors: new Map([[w.threadId, 0]]), pageMax: 10 });
      assert.deepEqual(synced[0]?.messages.map((m) => m.attachmentsJson), [null, json]);
      const [summary] = await w.f.threads.list(w.bob);
      assert.equal(summary?.lastMessage?.attachmentsJson, json);
      assert.deepEqual(summary?.lastMessage, message);
    });

    it('a resend of a send with attachments is its duplicate, with the same attachments, and writes no reference twice', async () => {
      const w = await world();
      const photo = await w.f.seedUpload(w.alice, w.aliceDevice, 'upload-photo-000000001');
      const json = JSON.stringify([{ id: photo }]);
      const send = w.text({ clientMsgId: 'with-photo', attachments: { json, uploadIds: [photo] } });
      const first = stored(await w.f.messaging.appendMessage(send));
      // Once after commit, and once in the same batch as another copy (one group commit / one batched unit).
      const again = await w.f.messaging.appendMessage(send);
      const [twice, thrice] = await Promise.all([w.f.messaging.appendMessage(send), w.f.messaging.appendMessage(send)]);
      for (const outcome of [again, twice, thrice]) assert.deepEqual(outcome, { kind: 'duplicate', message: first });
      assert.deepEqual(await w.f.attachmentRefs(), [[photo, w.threadId, 1]]);
    });

    it('stores the references of several sends with attachments submitted together, each under its own seq; a forwarded upload gets a reference per message', async () => {
      const w = await world();
      const photo = await w.f.seedUpload(w.alice, w.aliceDevice, 'upload-photo-000000001');
      const other = await w.f.seedUpload(w.alice, w.aliceDevice, 'upload-other-000000002');
      const outcomes = await Promise.all([
        w.f.messaging.appendMessage(w.text({ attachments: { json: JSON.stringify([{ id: photo }]), uploadIds: [photo] } })),
        w.f.messaging.appendMessage(w.text()),
        w.f.messaging.appendMessage(w.text({ attachments: { json: JSON.stringify([{ id: photo }, { id: other }]), uploadIds: [photo, other] } })),
        w.f.messaging.appendMessage(w.text({ senderUserId: w.bob, senderDeviceId: w.bobDevice, attachments: { json: JSON.stringify([{ id: photo }]), uploadIds: [photo] } })),
      ]);
      const seqs = outcomes.map((outcome) => stored(outcome).seq);
      assert.deepEqual([...seqs].sort(), [1, 2, 3, 4]);
      assert.deepEqual(
        await w.f.attachmentRefs(),
        [
          [other, w.threadId, seqs[2]],
          [photo, w.threadId, seqs[0]],
          [photo, w.threadId, seqs[2]],
          [photo, w.threadId, seqs[3]],
        ].sort((a, b) => String(a[0]).localeCompare(String(b[0])) || Number(a[2]) - Number(b[2])),
      );
      assert.equal(stored(outcomes[1] as AppendOutcome).attachmentsJson, null);
    });

    it('refuses a send whose attached upload is gone or incomplete (deleted since the service read it) naming it, and stores nothing', async () => {
      const w = await world();
      const photo = await w.f.seedUpload(w.alice, w.aliceDevice, 'upload-photo-000000001');
      const json = JSON.stringify([{ id: photo }, { id: 'upload-gone-0000000001' }]);
      const outcome = await w.f.messaging.appendMessage(w.text({ attachments: { json, uploadIds: [photo, 'upload-gone-0000000001'] } }));
      assert.deepEqual(outcome, { kind: 'refused', reason: 'attachment_gone', uploadId: 'upload-gone-0000000001' });
      assert.deepEqual(await w.f.attachmentRefs(), []);
      const page = await w.f.history.page({ userId: w.alice, threadId: w.threadId, anchor: { after: 0 }, size: 10 });
      assert.deepEqual(page?.messages, []);
      // The next send takes seq 1: nothing was stored.
      assert.equal(stored(await w.f.messaging.appendMessage(w.text({ attachments: { json: JSON.stringify([{ id: photo }]), uploadIds: [photo] } }))).seq, 1);
    });

    it('a refused send with attachments writes no reference', async () => {
      const w = await world();
      const photo = await w.f.seedUpload(w.carol, w.carolDevice, 'upload-photo-000000001');
      const outcome = await w.f.messaging.appendMessage(
        w.text({ senderUserId: w.carol, senderDeviceId: w.carolDevice, attachments: { json: JSON.stringify([{ id: photo }]), uploadIds: [photo] } }),
      );
      assert.deepEqual(outcome, { kind: 'refused', reason: 'no_thread' });
      assert.deepEqual(await w.f.attachmentRefs(), []);
    });

    it('opens one direct thread per pair, and refuses a group change decided on roles that changed', async () => {
      const w = await world();
      const again = await w.f.threads.openDirect({ userIds: [w.bob, w.alice], createdBy: w.bob, now: NOW });
      assert.deepEqual(again, { threadId: w.threadId, created: false });
      const { threadId } = await w.f.threads.createGroup({
        title: 'g',
        actor: { userId: w.alice, deviceId: w.aliceDevice },
        memberIds: [w.bob],
        e2eRequired: false,
        event: { event: 'group_created' },
        now: NOW,
      });
      const asAdmin = await w.f.threads.changeGroup({
        threadId,
        actor: { userId: w.alice, deviceId: w.aliceDevice },
        expect: { actorRole: 'admin' },
        change: { kind: 'rename', title: 'h', event: { event: 'renamed' } },
        now: NOW,
      });
      assert.deepEqual(asAdmin, { kind: 'stale' });
      const full = await w.f.threads.changeGroup({
        threadId,
        actor: { userId: w.alice, deviceId: w.aliceDevice },
        expect: { actorRole: 'owner' },
        change: { kind: 'add', userIds: [w.carol], maxMembers: 2, event: { event: 'members_added' } },
        now: NOW,
      });
      assert.deepEqual(full, { kind: 'refused', reason: 'group_full' });
      const added = await w.f.threads.changeGroup({
        threadId,
        actor: { userId: w.alice, deviceId: w.aliceDevice },
        expect: { actorRole: 'owner' },
        change: { kind: 'add', userIds: [w.carol, w.bob], maxMembers: 3, event: { event: 'members_added' } },
        now: NOW,
      });
      assert.equal(added.kind, 'changed');
      assert.deepEqual(added.kind === 'changed' && added.added, [w.carol]);
      assert.deepEqual(added.kind === 'changed' && JSON.parse(added.message?.bodyJson ?? 'null'), { event: 'members_added', user_ids: [w.carol] });
      // Carol sees history from her own "added" message on.
      const page = await w.f.history.page({ userId: w.carol, threadId, anchor: { after: 0 }, size: 10 });
      assert.deepEqual(page?.messages.map((m) => m.seq), [2]);
      const details = await w.f.threads.details(w.carol, threadId);
      assert.equal(details?.members.length, 3);
      assert.equal(details?.summary.title, 'g');
    });

    const fresh = async () => {
      const f = await open({ readDiffusionAbove: 50, push: true });
      opened.push(f);
      return f;
    };
    messageChangesContract(fresh);
    messageReadsContract(fresh);
    receiptsContract(fresh);
  });
}
