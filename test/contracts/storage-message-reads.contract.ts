import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { unreadCount } from '../../src/storage/ports/visibility.js';
import { changesWorld, NOW, stored } from './message-changes-world.js';
import type { MessagingFixture } from './storage-messaging.contract.js';

/**
 * Replies, mentions, and what reads make of change rows and hidden messages
 * (MSG-SPEC §1): history and the thread list show messages in their latest
 * state, sync and the inbox carry the change rows, unread never counts them,
 * "delete for me" hides a message from its user's reads. Part of the
 * messaging storage contract (every engine).
 */
export function messageReadsContract(open: () => Promise<MessagingFixture>): void {
  describe('replies, mentions, and reads of changed and hidden messages', () => {
    const world = async () => changesWorld(await open());

    it('stores a reply to a content message of the same thread the sender may see, and keeps it a reply once its target is deleted', async () => {
      const w = await world();
      const target = stored(await w.send(w.alice));
      const reply = stored(await w.send(w.bob, { replyTo: target.id }));
      assert.equal(reply.replyTo, target.id);
      assert.equal((await w.shown(w.alice, reply.id))?.replyTo, target.id);
      stored(await w.remove(w.alice, target.id));
      assert.equal((await w.shown(w.alice, reply.id))?.replyTo, target.id, 'a reply to a deleted message stays a reply');
      assert.deepEqual(await w.send(w.bob, { replyTo: target.id }), { kind: 'refused', reason: 'message_deleted' }, 'no new reply to a deleted message');
    });

    it('refuses a reply to a message of another thread, from before the sender joined, to a system or change row, or to no message', async () => {
      const w = await world();
      const elsewhere = stored(await w.send(w.alice, { threadId: w.group }));
      const [system] = await w.history(w.alice, w.group);
      const target = stored(await w.send(w.alice));
      const reaction = stored(await w.react(w.bob, target.id, '👍'));
      const invalid = { kind: 'refused', reason: 'reply_invalid' };
      assert.deepEqual(await w.send(w.bob, { replyTo: elsewhere.id }), invalid, 'another thread');
      assert.deepEqual(await w.send(w.bob, { replyTo: system?.id as number, threadId: w.group }), invalid, 'a system message');
      assert.deepEqual(await w.send(w.bob, { replyTo: reaction.id }), invalid, 'a change row');
      assert.deepEqual(await w.send(w.bob, { replyTo: 987654 }), invalid, 'no such message');
      const added = await w.f.threads.changeGroup({
        threadId: w.group,
        actor: w.alice,
        expect: { actorRole: 'owner' },
        change: { kind: 'add', userIds: [w.dave.userId], maxMembers: 10, event: { event: 'members_added' } },
        now: NOW,
      });
      assert.equal(added.kind, 'changed');
      assert.deepEqual(await w.send(w.dave, { threadId: w.group, replyTo: elsewhere.id }), invalid, 'from before dave joined');
      const after = stored(await w.send(w.alice, { threadId: w.group }));
      assert.equal(stored(await w.send(w.dave, { threadId: w.group, replyTo: after.id })).replyTo, after.id);
    });

    it('stores mentions of current members on sends and edits, and refuses one of anybody else, naming them', async () => {
      const w = await world();
      const message = stored(await w.send(w.alice, { threadId: w.group, mentions: [w.bob.userId, w.carol.userId] }));
      assert.equal(message.mentionsJson, JSON.stringify([w.bob.userId, w.carol.userId]));
      assert.equal((await w.shown(w.bob, message.id, w.group))?.mentionsJson, JSON.stringify([w.bob.userId, w.carol.userId]));
      assert.equal(stored(await w.send(w.alice, { threadId: w.group, mentions: [] })).mentionsJson, null, 'none: null');
      assert.deepEqual(await w.send(w.alice, { threadId: w.group, mentions: [w.bob.userId, w.dave.userId] }), {
        kind: 'refused',
        reason: 'mention_not_member',
        userId: w.dave.userId,
      });
      assert.deepEqual(await w.edit(w.alice, message.id, 'x', { threadId: w.group, mentions: [w.dave.userId] }), {
        kind: 'refused',
        reason: 'mention_not_member',
        userId: w.dave.userId,
      });
      const left = await w.f.threads.changeGroup({
        threadId: w.group,
        actor: w.bob,
        expect: { actorRole: 'member' },
        change: { kind: 'end', userId: w.bob.userId, newOwner: null, event: { event: 'member_left' } },
        now: NOW,
      });
      assert.equal(left.kind, 'changed');
      assert.deepEqual(await w.send(w.alice, { threadId: w.group, mentions: [w.bob.userId] }), { kind: 'refused', reason: 'mention_not_member', userId: w.bob.userId }, 'a former member');
    });

    it('never counts change rows as unread: the thread list, markRead, the total', async () => {
      const w = await world();
      const first = stored(await w.send(w.alice));
      stored(await w.react(w.alice, first.id, '👍'));
      const second = stored(await w.send(w.alice));
      stored(await w.edit(w.alice, second.id, 'edited'));
      stored(await w.react(w.alice, second.id, '🎉'));
      assert.equal(await w.f.messaging.totalUnread(w.bob.userId), 2);
      const summary = (await w.f.threads.list(w.bob.userId)).find((t) => t.id === w.direct);
      assert.ok(summary);
      assert.equal(summary.lastSeq, 5);
      assert.equal(unreadCount(summary, summary.lastSeq, summary.uncounted), 2);
      // Read up to the first message: the reaction after it and the changes at the end are not unread.
      assert.deepEqual(await w.f.messaging.markRead({ userId: w.bob.userId, threadId: w.direct, seq: first.seq }), {
        kind: 'done',
        moved: true,
        authors: [w.alice.userId],
        readSeq: 1,
        unread: 1,
        totalUnread: 1,
      });
      // Read up to the reaction (a change row): the same one message left.
      assert.deepEqual(await w.f.messaging.markRead({ userId: w.bob.userId, threadId: w.direct, seq: 2 }), { kind: 'done', moved: true, authors: [], readSeq: 2, unread: 1, totalUnread: 1 }, 'a change row makes nobody an author');
      const later = (await w.f.threads.list(w.bob.userId)).find((t) => t.id === w.direct);
      assert.equal(later && unreadCount(later, later.lastSeq, later.uncounted), 1);
      // Bob's own reaction moves his read cursor, as a send does.
      stored(await w.react(w.bob, second.id, '👍'));
      assert.equal(await w.f.messaging.totalUnread(w.bob.userId), 0);
      assert.equal(await w.f.messaging.totalUnread(w.alice.userId), 0, "bob's reaction is not unread for alice");
    });

    it("counts a former member's unread up to where they left, change rows left out on both sides", async () => {
      const w = await world();
      const target = stored(await w.send(w.alice, { threadId: w.group }));
      const reaction = stored(await w.react(w.carol, target.id, '👍', true, { threadId: w.group }));
      stored(await w.send(w.alice, { threadId: w.group }));
      stored(await w.react(w.carol, target.id, '🎉', true, { threadId: w.group }));
      // Bob's read cursor on a change row: what comes after it is counted from there.
      const read = await w.f.messaging.markRead({ userId: w.bob.userId, threadId: w.group, seq: reaction.seq });
      assert.deepEqual(read, { kind: 'done', moved: true, authors: [w.alice.userId], readSeq: reaction.seq, unread: 1, totalUnread: 1 });
      const left = await w.f.threads.changeGroup({
        threadId: w.group,
        actor: w.alice,
        expect: { actorRole: 'owner', members: [{ userId: w.bob.userId, role: 'member' }] },
        change: { kind: 'end', userId: w.bob.userId, newOwner: null, event: { event: 'member_removed' } },
        now: NOW,
      });
      assert.equal(left.kind, 'changed');
      stored(await w.react(w.carol, target.id, '❤️', true, { threadId: w.group }));
      stored(await w.send(w.alice, { threadId: w.group }));
      // Unread for bob: alice's second message and his removal; carol's reactions never count, nor what came after he left.
      const bobs = (await w.f.threads.list(w.bob.userId)).find((t) => t.id === w.group);
      assert.ok(bobs);
      assert.equal(unreadCount(bobs, bobs.lastSeq, bobs.uncounted), 2);
      assert.equal(await w.f.messaging.totalUnread(w.bob.userId), 2);
    });

    it("shows the last content message as the thread's last message, never a change row nor a hidden one, and changes do not reorder the list", async () => {
      const w = await world();
      const first = stored(await w.send(w.alice));
      const inGroup = stored(await w.send(w.alice, { threadId: w.group }));
      stored(await w.react(w.bob, first.id, '👍'));
      stored(await w.edit(w.alice, first.id, 'edited', { now: NOW + 5000 }));
      const list = await w.f.threads.list(w.bob.userId);
      assert.deepEqual(
        list.map((t) => t.id),
        [w.group, w.direct],
        'the group had the latest message; changes in the direct thread do not move it up',
      );
      const direct = list.find((t) => t.id === w.direct);
      assert.equal(direct?.lastMessage?.id, first.id);
      assert.equal(direct?.lastMessage?.bodyJson, '{"text":"edited"}', 'in its latest state');
      assert.equal(direct?.lastSeq, 3);
      const second = stored(await w.send(w.alice));
      assert.equal((await w.f.messaging.hideMessage({ userId: w.bob.userId, messageId: second.id, now: NOW })).kind, 'hidden');
      assert.equal((await w.f.threads.list(w.bob.userId)).find((t) => t.id === w.direct)?.lastMessage?.id, first.id, 'not the one bob hid');
      assert.equal((await w.f.threads.list(w.alice.userId)).find((t) => t.id === w.direct)?.lastMessage?.id, second.id, 'alice did not hide it');
      assert.equal((await w.f.threads.details(w.bob.userId, w.group))?.summary.lastMessage?.id, inGroup.id);
    });

    it('pages history without change rows nor hidden messages, in every direction, and jumps to neither', async () => {
      const w = await world();
      const a = stored(await w.send(w.alice));
      const edit = stored(await w.edit(w.alice, a.id, 'a2'));
      const b = stored(await w.send(w.alice));
      stored(await w.react(w.bob, b.id, '👍'));
      const c = stored(await w.send(w.alice));
      const d = stored(await w.send(w.alice));
      assert.equal((await w.f.messaging.hideMessage({ userId: w.bob.userId, messageId: c.id, now: NOW })).kind, 'hidden');
      const ids = async (who: typeof w.bob, anchor: Parameters<typeof w.f.history.page>[0]['anchor'], size = 10) =>
        (await w.f.history.page({ userId: who.userId, threadId: w.direct, anchor, size }))?.messages.map((m) => m.id);
      assert.deepEqual(await ids(w.bob, { after: 0 }), [a.id, b.id, d.id]);
      assert.deepEqual(await ids(w.alice, { after: 0 }), [a.id, b.id, c.id, d.id], 'hidden for bob only');
      assert.deepEqual(await ids(w.bob, { latest: true }, 2), [b.id, d.id], 'a page is full of messages, not of rows');
      assert.deepEqual(await ids(w.bob, { before: d.seq }, 2), [a.id, b.id]);
      assert.deepEqual(await ids(w.bob, { around: c.seq }, 3), [b.id, d.id]);
      assert.deepEqual(await ids(w.bob, { after: a.seq }, 1), [b.id]);
      assert.equal(await w.f.history.locate(w.bob.userId, edit.id), undefined, 'a change row is nowhere in history');
      assert.equal(await w.f.history.locate(w.bob.userId, c.id), undefined, 'nor a message bob hid');
      assert.equal((await w.f.history.locate(w.alice.userId, c.id))?.seq, c.seq);
      // A change request's target is found whatever the user hid, a change row too (the unit refuses that).
      assert.deepEqual(
        [(await w.f.history.locate(w.bob.userId, edit.id, { anyRow: true }))?.seq, (await w.f.history.locate(w.bob.userId, c.id, { anyRow: true }))?.seq],
        [edit.seq, c.seq],
      );
      assert.equal(await w.f.history.locate(w.bob.userId, 1_000_000, { anyRow: true }), undefined, 'no such message');
    });

    it('says whether there is more from the messages the page would show, not from seqs: change rows and hidden messages at either end are no more', async () => {
      const w = await world();
      const flags = async (who: typeof w.bob, anchor: Parameters<typeof w.f.history.page>[0]['anchor'], size = 10) => {
        const page = await w.f.history.page({ userId: who.userId, threadId: w.direct, anchor, size });
        return page && [page.messages.map((m) => m.id), page.moreBefore, page.moreAfter];
      };
      // One message, then a reaction: the newest seq is a change row, which no page of history holds.
      const a = stored(await w.send(w.alice));
      const reaction = stored(await w.react(w.bob, a.id, '👍'));
      assert.deepEqual(await flags(w.bob, { latest: true }), [[a.id], false, false], 'the reaction is no newer message');
      assert.deepEqual(await flags(w.bob, { after: 0 }, 1), [[a.id], false, false]);
      assert.deepEqual(await flags(w.bob, { around: a.seq }), [[a.id], false, false]);
      assert.deepEqual(await flags(w.bob, { after: a.seq }), [[], true, false], 'an empty page looks from its anchor');
      assert.deepEqual(await flags(w.bob, { after: 0, changes: true }, 1), [[a.id], false, true], 'with changes, the reaction is more');
      assert.deepEqual(await flags(w.bob, { after: a.seq, changes: true }), [[reaction.id], true, false]);
      // Bob hides the first message: it is no older message for him, but still one for alice.
      const b = stored(await w.send(w.alice));
      const c = stored(await w.send(w.alice));
      assert.equal((await w.f.messaging.hideMessage({ userId: w.bob.userId, messageId: a.id, now: NOW })).kind, 'hidden');
      assert.deepEqual(await flags(w.bob, { latest: true }, 2), [[b.id, c.id], false, false], 'the hidden first message is no older one');
      assert.deepEqual(await flags(w.bob, { before: c.seq }, 1), [[b.id], false, true]);
      assert.deepEqual(await flags(w.bob, { after: 0, changes: true }, 1), [[b.id], false, true], 'nor with changes (its reaction neither)');
      assert.deepEqual(await flags(w.alice, { latest: true }, 2), [[b.id, c.id], true, false], 'alice did not hide it');
      // The ordinary cases still say there is more.
      const d = stored(await w.send(w.alice));
      assert.deepEqual(await flags(w.bob, { after: 0 }, 2), [[b.id, c.id], false, true]);
      assert.deepEqual(await flags(w.bob, { around: c.seq }, 1), [[c.id], true, true]);
      assert.deepEqual(await flags(w.bob, { before: d.seq }, 1), [[c.id], true, true]);
      assert.deepEqual(await flags(w.bob, { latest: true }, 2), [[c.id, d.id], true, false]);
    });

    it('says a sync has more only when a row it would give is left, not when the last rows are hidden', async () => {
      const w = await world();
      const a = stored(await w.send(w.alice));
      const b = stored(await w.send(w.alice));
      stored(await w.react(w.alice, b.id, '👍'));
      assert.equal((await w.f.messaging.hideMessage({ userId: w.bob.userId, messageId: b.id, now: NOW })).kind, 'hidden');
      const sync = async (pageMax: number) =>
        (await w.f.history.sync({ userId: w.bob.userId, deviceId: w.bob.deviceId, cursors: new Map([[w.direct, 0]]), pageMax })).map((t) => [
          t.lastSeq,
          t.messages.map((m) => m.id),
          t.hasMore,
        ]);
      assert.deepEqual(await sync(100), [[3, [a.id], false]], 'the hidden message and its reaction are no more');
      assert.deepEqual(await sync(1), [[3, [a.id], false]]);
      const c = stored(await w.send(w.alice));
      assert.deepEqual(await sync(1), [[4, [a.id], true]]);
      assert.deepEqual(await sync(2), [[4, [a.id, c.id], false]]);
    });

    it("syncs change rows (a device that was away learns of every change) but not the user's hidden messages nor their changes", async () => {
      const w = await world();
      const a = stored(await w.send(w.alice));
      const b = stored(await w.send(w.alice));
      const editA = stored(await w.edit(w.alice, a.id, 'a2'));
      const reactB = stored(await w.react(w.alice, b.id, '👍'));
      const deleteA = stored(await w.remove(w.alice, a.id));
      assert.equal((await w.f.messaging.hideMessage({ userId: w.bob.userId, messageId: b.id, now: NOW })).kind, 'hidden');
      const sync = async (who: typeof w.bob) =>
        (await w.f.history.sync({ userId: who.userId, deviceId: who.deviceId, cursors: new Map([[w.direct, 0]]), pageMax: 100 }))[0]?.messages.map((m) => [m.id, m.targetId, m.change?.type ?? null]);
      assert.deepEqual(await sync(w.bob), [
        [a.id, null, null],
        [editA.id, a.id, 'edit'],
        [deleteA.id, a.id, 'delete'],
      ]);
      assert.deepEqual(await sync(w.alice), [
        [a.id, null, null],
        [b.id, null, null],
        [editA.id, a.id, 'edit'],
        [reactB.id, b.id, 'reaction'],
        [deleteA.id, a.id, 'delete'],
      ]);
      const page = await w.f.history.sync({ userId: w.bob.userId, deviceId: w.bob.deviceId, cursors: new Map([[w.direct, 0]]), pageMax: 2 });
      assert.deepEqual(page.map((t) => [t.lastSeq, t.messages.map((m) => m.id), t.hasMore]), [[5, [a.id, editA.id], true]]);
    });

    it('pages after a seq with the change rows when asked (closing a gap in the live stream), as sync gives them', async () => {
      const w = await world();
      const a = stored(await w.send(w.alice));
      const b = stored(await w.send(w.alice));
      const editA = stored(await w.edit(w.alice, a.id, 'a2'));
      const reactB = stored(await w.react(w.alice, b.id, '👍'));
      const c = stored(await w.send(w.alice));
      assert.equal((await w.f.messaging.hideMessage({ userId: w.bob.userId, messageId: b.id, now: NOW })).kind, 'hidden');
      const rows = async (who: typeof w.bob, after: number, size = 10) =>
        (await w.f.history.page({ userId: who.userId, threadId: w.direct, anchor: { after, changes: true }, size }))?.messages.map((m) => m.id);
      assert.deepEqual(await rows(w.alice, 0), [a.id, b.id, editA.id, reactB.id, c.id]);
      assert.deepEqual(await rows(w.alice, b.seq, 1), [editA.id], 'a gap of one change row is closed by it');
      assert.deepEqual(await rows(w.bob, 0), [a.id, editA.id, c.id], "not bob's hidden message nor its changes");
      assert.deepEqual(
        (await w.f.history.page({ userId: w.alice.userId, threadId: w.direct, anchor: { after: 0, changes: false }, size: 10 }))?.messages.map((m) => m.id),
        [a.id, b.id, c.id],
        'without it, messages only',
      );
    });

    it('writes inbox rows for change rows (the offline devices learn of them in order), none for the changer, and the inbox carries them', async () => {
      const w = await world();
      const a = stored(await w.send(w.alice));
      const reaction = stored(await w.react(w.bob, a.id, '👍'));
      const edit = stored(await w.edit(w.alice, a.id, 'a2'));
      assert.deepEqual(await w.f.inbox(w.bob.deviceId), [a.id, edit.id]);
      assert.deepEqual(await w.f.inbox(w.alice.deviceId), [reaction.id]);
      const page = await w.f.delivery.inboxPage(w.bob.deviceId, 0, 10);
      assert.deepEqual(page.messages.map((m) => [m.id, m.change?.type ?? null, m.bodyJson]), [
        [a.id, null, '{"text":"a2"}'],
        [edit.id, 'edit', '{"text":"a2"}'],
      ]);
    });

    it('queues push for a message, none for a change of it (an edit adding a mention neither)', async () => {
      const w = await world();
      const message = stored(await w.send(w.alice));
      assert.deepEqual(await w.f.pushNoted(), [[w.direct, message.id]]);
      stored(await w.react(w.bob, message.id, '👍'));
      stored(await w.edit(w.alice, message.id, 'hey bob', { mentions: [w.bob.userId] }));
      stored(await w.remove(w.alice, message.id));
      assert.deepEqual(await w.f.pushNoted(), [[w.direct, message.id]], 'still the message, not a change row');
    });

    it('hides a message for its user only, once, within what they may see, and pages the hidden ones by id', async () => {
      const w = await world();
      const messages = [];
      for (let i = 0; i < 5; i++) messages.push(stored(await w.send(w.alice)));
      const reaction = stored(await w.react(w.bob, (messages[0] as { id: number }).id, '👍'));
      const inGroup = stored(await w.send(w.alice, { threadId: w.group }));
      const hidden = [];
      for (const m of [messages[3], messages[0], messages[4]]) {
        const outcome = await w.f.messaging.hideMessage({ userId: w.bob.userId, messageId: (m as { id: number }).id, now: NOW });
        assert.equal(outcome.kind === 'hidden' && outcome.already, false);
        hidden.push(outcome.kind === 'hidden' ? outcome.hidden : undefined);
      }
      const again = await w.f.messaging.hideMessage({ userId: w.bob.userId, messageId: (messages[0] as { id: number }).id, now: NOW + 1 });
      assert.deepEqual(again, { kind: 'hidden', hidden: hidden[1], already: true });
      const gone = { kind: 'refused', reason: 'no_message' };
      assert.deepEqual(await w.f.messaging.hideMessage({ userId: w.bob.userId, messageId: reaction.id, now: NOW }), gone, 'a change row');
      assert.deepEqual(await w.f.messaging.hideMessage({ userId: w.dave.userId, messageId: inGroup.id, now: NOW }), gone, 'never a member');
      assert.deepEqual(await w.f.messaging.hideMessage({ userId: w.bob.userId, messageId: 987654, now: NOW }), gone);
      const inGroupHidden = await w.f.messaging.hideMessage({ userId: w.bob.userId, messageId: inGroup.id, now: NOW });
      assert.equal(inGroupHidden.kind, 'hidden');
      const all = await w.f.messaging.hiddenAfter(w.bob.userId, 0, 500);
      assert.deepEqual(
        all.items.map((h) => [h.threadId, h.messageId]),
        [
          [w.direct, messages[3]?.id],
          [w.direct, messages[0]?.id],
          [w.direct, messages[4]?.id],
          [w.group, inGroup.id],
        ],
        'in the order hidden',
      );
      assert.equal(all.more, false);
      assert.deepEqual(hidden, all.items.slice(0, 3));
      const firstPage = await w.f.messaging.hiddenAfter(w.bob.userId, 0, 2);
      assert.deepEqual([firstPage.items.map((h) => h.messageId), firstPage.more], [[messages[3]?.id, messages[0]?.id], true]);
      const secondPage = await w.f.messaging.hiddenAfter(w.bob.userId, firstPage.items.at(-1)?.id as number, 2);
      assert.deepEqual([secondPage.items.map((h) => h.messageId), secondPage.more], [[messages[4]?.id, inGroup.id], false]);
      assert.deepEqual(await w.f.messaging.hiddenAfter(w.alice.userId, 0, 10), { items: [], more: false });
      // A former member may still hide what they saw, up to where they left.
      const left = await w.f.threads.changeGroup({
        threadId: w.group,
        actor: w.carol,
        expect: { actorRole: 'admin' },
        change: { kind: 'end', userId: w.carol.userId, newOwner: null, event: { event: 'member_left' } },
        now: NOW,
      });
      assert.equal(left.kind, 'changed');
      const later = stored(await w.send(w.alice, { threadId: w.group }));
      assert.equal((await w.f.messaging.hideMessage({ userId: w.carol.userId, messageId: inGroup.id, now: NOW })).kind, 'hidden');
      assert.deepEqual(await w.f.messaging.hideMessage({ userId: w.carol.userId, messageId: later.id, now: NOW }), gone, 'after she left');
    });
  });
}
