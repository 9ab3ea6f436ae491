import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { GroupChange } from '../../src/storage/ports/threads.js';
import { changesWorld, NOW, stored, type Who } from './message-changes-world.js';
import type { MessagingFixture } from './storage-messaging.contract.js';

/**
 * Protocol 4's receipts in storage: the authors a cursor move reports (who its
 * receipt goes to), read in the unit that moves it, and the `receipts` read
 * (who has received and read a message) from the members' cursors. Part of
 * the messaging storage contract (every engine).
 */
export function receiptsContract(open: () => Promise<MessagingFixture>): void {
  describe('receipts: the authors of a cursor move, and who has received and read a message', () => {
    const world = async () => {
      const w = await changesWorld(await open());
      const roles = new Map([[w.alice, 'owner'], [w.bob, 'member'], [w.carol, 'admin']] as const);
      const change = async (actor: Who, change: GroupChange, now = NOW) => {
        const outcome = await w.f.threads.changeGroup({ threadId: w.group, actor, expect: { actorRole: roles.get(actor) ?? 'member' }, change, now });
        assert.equal(outcome.kind, 'changed', JSON.stringify(outcome));
      };
      const delivered = (who: Who, seq: number, threadId = w.group) => w.f.messaging.markDelivered({ userId: who.userId, deviceId: who.deviceId, threadId, seq });
      const read = async (who: Who, seq: number, threadId = w.group) => {
        const outcome = await w.f.messaging.markRead({ userId: who.userId, threadId, seq });
        return outcome.kind === 'done' ? { moved: outcome.moved, authors: outcome.authors } : outcome;
      };
      return { ...w, change, delivered, read };
    };

    it('reports as authors the distinct senders of the messages a delivered move passes, the mover, change rows and system messages left out', async () => {
      const w = await world();
      // The group's seqs 1 and 2 are system messages (alice's actions), received and read by all.
      const first = stored(await w.send(w.alice, { threadId: w.group })); // 3
      stored(await w.send(w.bob, { threadId: w.group })); // 4
      stored(await w.react(w.bob, first.id, '👍', true, { threadId: w.group })); // 5: a change row of bob's
      stored(await w.send(w.alice, { threadId: w.group })); // 6
      stored(await w.send(w.carol, { threadId: w.group })); // 7
      const ascending = (...ids: number[]) => ids.sort((a, b) => a - b);

      assert.deepEqual(await w.delivered(w.carol, 4), { kind: 'done', seq: 4, moved: true, authors: ascending(w.alice.userId, w.bob.userId) });
      assert.deepEqual(await w.delivered(w.carol, 6), { kind: 'done', seq: 6, moved: true, authors: [w.alice.userId] }, "bob's reaction (a change row) adds nobody");
      assert.deepEqual(await w.delivered(w.carol, 6), { kind: 'done', seq: 6, moved: false, authors: [] }, 'no move, nobody');
      assert.deepEqual(await w.delivered(w.carol, 3), { kind: 'done', seq: 3, moved: false, authors: [] }, 'a move back, nobody');
      assert.deepEqual(
        await w.delivered(w.bob, 99),
        { kind: 'done', seq: 7, moved: true, authors: ascending(w.alice.userId, w.carol.userId) },
        "clamped to the last seq; bob's own message adds nobody",
      );

      // Dave joins: a system message of alice's (8), which makes nobody an author. His cursor starts where he joined,
      // so his first ack names no author of what came before.
      await w.change(w.alice, { kind: 'add', userIds: [w.dave.userId], maxMembers: 10, event: { event: 'members_added' } });
      assert.deepEqual(await w.delivered(w.bob, 8), { kind: 'done', seq: 8, moved: true, authors: [] }, 'a system message adds nobody');
      const later = stored(await w.send(w.carol, { threadId: w.group })); // 9
      assert.deepEqual(await w.delivered(w.dave, later.seq), { kind: 'done', seq: 9, moved: true, authors: [w.carol.userId] }, 'none of before he joined');
    });

    it('reports the authors of each ack of one turn from the cursor the acks before it left', async () => {
      const w = await world();
      stored(await w.send(w.alice, { threadId: w.group })); // 3
      stored(await w.send(w.bob, { threadId: w.group })); // 4
      stored(await w.send(w.alice, { threadId: w.group })); // 5
      const [one, two, three] = await Promise.all([w.delivered(w.carol, 3), w.delivered(w.carol, 5), w.delivered(w.carol, 4)]);
      assert.deepEqual(one, { kind: 'done', seq: 3, moved: true, authors: [w.alice.userId] });
      assert.deepEqual(two, { kind: 'done', seq: 5, moved: true, authors: [w.alice.userId, w.bob.userId].sort((a, b) => a - b) });
      assert.deepEqual(three, { kind: 'done', seq: 4, moved: false, authors: [] });
    });

    it('reports as authors of a read move the senders it passes; none once the reader left, nor for a thread they were never in', async () => {
      const w = await world();
      stored(await w.send(w.alice, { threadId: w.group })); // 3
      stored(await w.send(w.carol, { threadId: w.group })); // 4
      stored(await w.send(w.alice, { threadId: w.group })); // 5
      assert.deepEqual(await w.read(w.bob, 3), { moved: true, authors: [w.alice.userId] });
      assert.deepEqual(await w.read(w.bob, 5), { moved: true, authors: [w.alice.userId, w.carol.userId].sort((a, b) => a - b) });
      assert.deepEqual(await w.read(w.bob, 5), { moved: false, authors: [] });
      assert.deepEqual(await w.read(w.carol, 5), { moved: true, authors: [w.alice.userId] }, "sending moved carol's read cursor to 4: only what follows");
      const sent = stored(await w.send(w.bob)); // the direct thread: alice and bob
      assert.deepEqual(await w.read(w.alice, sent.seq, w.direct), { moved: true, authors: [w.bob.userId] });
      assert.deepEqual(await w.read(w.dave, 1, w.direct), { kind: 'refused', reason: 'no_thread' });

      stored(await w.send(w.alice, { threadId: w.group })); // 6
      await w.change(w.carol, { kind: 'end', userId: w.carol.userId, newOwner: null, event: { event: 'member_left' } }); // 7
      assert.deepEqual(await w.read(w.carol, 7), { moved: false, authors: [] }, 'a former member tells nobody');
      assert.deepEqual(await w.delivered(w.carol, 7), { kind: 'done', seq: 7, moved: false, authors: [] });
    });

    it('names only current members as authors: a former member who wrote in the range is told nothing, on either cursor', async () => {
      const w = await world();
      stored(await w.send(w.bob, { threadId: w.group })); // 3
      stored(await w.send(w.alice, { threadId: w.group })); // 4
      await w.change(w.bob, { kind: 'end', userId: w.bob.userId, newOwner: null, event: { event: 'member_left' } }); // 5: bob's own leaving
      assert.deepEqual(await w.delivered(w.carol, 5), { kind: 'done', seq: 5, moved: true, authors: [w.alice.userId] }, 'bob left');
      assert.deepEqual(await w.read(w.carol, 5), { moved: true, authors: [w.alice.userId] }, 'bob left');
    });

    it('names as authors of a move past more than 1,000 messages only the senders of its last 1,000', async () => {
      const w = await world();
      const sendAll = async (who: Who, count: number) => {
        for (let sent = 0; sent < count; sent += 100) {
          await Promise.all(Array.from({ length: Math.min(100, count - sent) }, () => w.send(who, { threadId: w.group }).then(stored)));
        }
      };
      await sendAll(w.bob, 1); // 3: one seq too early for a move to 1,003
      await sendAll(w.alice, 1000); // 4 to 1,003
      // Carol's cursors are at 2: the move passes 1,001 messages; only the last 1,000 count.
      assert.deepEqual(await w.delivered(w.carol, 1003), { kind: 'done', seq: 1003, moved: true, authors: [w.alice.userId] });
      await sendAll(w.bob, 1); // 1,004
      assert.deepEqual(await w.read(w.carol, 1004), { moved: true, authors: [w.alice.userId, w.bob.userId].sort((a, b) => a - b) }, 'from 4 on');
    });

    it('lists who has read, received, or not yet received a message: current members who may see it, its author left out, in joining order', async () => {
      const w = await world();
      const erin: Who = { userId: await w.f.user('erin'), deviceId: 0 };
      await w.change(w.alice, { kind: 'add', userIds: [erin.userId], maxMembers: 10, event: { event: 'members_added' } }, NOW + 1); // 3
      const message = stored(await w.send(w.alice, { threadId: w.group })); // 4
      await w.change(w.alice, { kind: 'add', userIds: [w.dave.userId], maxMembers: 10, event: { event: 'members_added' } }, NOW + 2); // 5
      assert.deepEqual(await w.read(w.bob, 4), { moved: true, authors: [w.alice.userId] });
      assert.equal((await w.delivered(w.carol, 4)).kind, 'done');
      // Everyone may ask who has it (dave joined after it: he is left out, and may not ask about it).
      const expected = { kind: 'found', read: [w.bob.userId], delivered: [w.carol.userId], pending: [erin.userId] };
      assert.deepEqual(await w.f.messaging.receiptsOf(w.group, message.seq, w.alice.userId), expected);
      assert.deepEqual(await w.f.messaging.receiptsOf(w.group, message.seq, erin.userId), expected);
      assert.deepEqual(await w.f.messaging.receiptsOf(w.group, message.seq, w.dave.userId), { kind: 'refused', reason: 'no_message' }, 'joined after it');
      // Erin's "added" message: she may see it (her list place is last, she joined last); alice wrote it and is left out.
      const ordered = [w.bob.userId, w.carol.userId].sort((a, b) => a - b);
      assert.deepEqual(await w.f.messaging.receiptsOf(w.group, 3, w.bob.userId), { kind: 'found', read: [w.bob.userId], delivered: [w.carol.userId], pending: [erin.userId] });
      assert.deepEqual(await w.f.messaging.receiptsOf(w.group, 5, w.dave.userId), {
        kind: 'found',
        read: [],
        delivered: [],
        pending: [...ordered, erin.userId, w.dave.userId],
      });

      const refused = (reason: string) => ({ kind: 'refused', reason });
      assert.deepEqual(await w.f.messaging.receiptsOf(w.group, 6, w.bob.userId), refused('no_message'), 'beyond the last seq');
      assert.deepEqual(await w.f.messaging.receiptsOf(w.group, 0, w.bob.userId), refused('no_message'));
      assert.deepEqual(await w.f.messaging.receiptsOf(w.direct, 1, w.carol.userId), refused('no_thread'), 'never a member');
      assert.deepEqual(await w.f.messaging.receiptsOf(987654, 1, w.bob.userId), refused('no_thread'), 'no such thread');
      await w.change(w.bob, { kind: 'end', userId: w.bob.userId, newOwner: null, event: { event: 'member_left' } });
      assert.deepEqual(await w.f.messaging.receiptsOf(w.group, message.seq, w.bob.userId), refused('no_thread'), 'a former member');
      assert.deepEqual(
        await w.f.messaging.receiptsOf(w.group, message.seq, w.alice.userId),
        { kind: 'found', read: [], delivered: [w.carol.userId], pending: [erin.userId] },
        'a former member is left out',
      );
    });

    it('answers no_message for a change row (an edit, a reaction, a delete), as hide does', async () => {
      const w = await world();
      const message = stored(await w.send(w.alice));
      const changes = [
        stored(await w.react(w.bob, message.id, '👍')),
        stored(await w.edit(w.alice, message.id, 'again')),
        stored(await w.remove(w.alice, message.id)),
      ];
      for (const change of changes) {
        assert.deepEqual(await w.f.messaging.receiptsOf(w.direct, change.seq, w.bob.userId), { kind: 'refused', reason: 'no_message' }, `seq ${change.seq}`);
      }
    });

    it('answers for a direct thread from the peer\'s cursors', async () => {
      const w = await world();
      const message = stored(await w.send(w.alice));
      assert.deepEqual(await w.f.messaging.receiptsOf(w.direct, message.seq, w.alice.userId), { kind: 'found', read: [], delivered: [], pending: [w.bob.userId] });
      await w.delivered(w.bob, message.seq, w.direct);
      assert.deepEqual(await w.f.messaging.receiptsOf(w.direct, message.seq, w.bob.userId), { kind: 'found', read: [], delivered: [w.bob.userId], pending: [] });
      await w.read(w.bob, message.seq, w.direct);
      assert.deepEqual(await w.f.messaging.receiptsOf(w.direct, message.seq, w.alice.userId), { kind: 'found', read: [w.bob.userId], delivered: [], pending: [] });
    });
  });
}
