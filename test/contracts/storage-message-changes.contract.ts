import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_REACTIONS_PER_USER } from '../../src/storage/ports/messaging.js';
import { changesWorld, NOW, stored, WINDOW } from './message-changes-world.js';
import type { MessagingFixture } from './storage-messaging.contract.js';

/**
 * Edits, deletes for everyone and reactions (MSG-SPEC §1): each appended as a
 * change row in the send's unit, its target brought to its latest state in
 * the same unit. Part of the messaging storage contract (every engine).
 */
export function messageChangesContract(open: () => Promise<MessagingFixture>): void {
  describe('message changes', () => {
    const world = async () => changesWorld(await open());

    it("appends an author's edit as a change row with the next seq and brings the target to the new body, mentions and edited_at", async () => {
      const w = await world();
      const original = stored(await w.send());
      const edit = stored(await w.edit(w.alice, original.id, 'fixed', { mentions: [w.bob.userId], now: NOW + 500 }));
      assert.deepEqual(
        { seq: edit.seq, kind: edit.kind, body: edit.bodyJson, targetId: edit.targetId, change: edit.change, mentions: edit.mentionsJson, replyTo: edit.replyTo },
        { seq: 2, kind: 'text', body: '{"text":"fixed"}', targetId: original.id, change: { type: 'edit' }, mentions: `[${w.bob.userId}]`, replyTo: null },
      );
      const target = await w.shown(w.bob, original.id);
      assert.deepEqual(
        { body: target?.bodyJson, mentions: target?.mentionsJson, editedAt: target?.editedAt, deletedAt: target?.deletedAt, createdAt: target?.createdAt },
        { body: '{"text":"fixed"}', mentions: `[${w.bob.userId}]`, editedAt: NOW + 500, deletedAt: null, createdAt: NOW },
      );
      // A second edit without mentions takes them away.
      stored(await w.edit(w.alice, original.id, 'again', { now: NOW + 600 }));
      const again = await w.shown(w.bob, original.id);
      assert.deepEqual([again?.bodyJson, again?.mentionsJson, again?.editedAt], ['{"text":"again"}', null, NOW + 600]);
    });

    it("refuses an edit of someone else's message, after the window, of a deleted, system or change message, and of another kind", async () => {
      const w = await world();
      const original = stored(await w.send());
      assert.deepEqual(await w.edit(w.bob, original.id, 'mine now'), { kind: 'refused', reason: 'not_author' });
      assert.deepEqual(await w.edit(w.alice, original.id, 'late', { now: NOW + WINDOW + 1 }), { kind: 'refused', reason: 'edit_window_passed', windowMs: WINDOW });
      stored(await w.edit(w.alice, original.id, 'just in time', { now: NOW + WINDOW }));
      const forever = await w.change(w.alice, { type: 'edit', targetId: original.id, content: { kind: 'text' }, bodyJson: '{"text":"years later"}', editWindowMs: 0 }, { now: NOW + 10 * WINDOW });
      assert.equal(forever.kind, 'stored', 'a window of 0 is no limit');
      const editRow = stored(await w.edit(w.alice, original.id, 'x'));
      assert.deepEqual(await w.edit(w.alice, editRow.id, 'edit of an edit'), { kind: 'refused', reason: 'not_changeable' });
      const [system] = await w.history(w.alice, w.group);
      assert.equal(system?.kind, 'system');
      assert.deepEqual(await w.edit(w.alice, system?.id as number, 'x', { threadId: w.group }), { kind: 'refused', reason: 'not_changeable' });
      const e2e = await w.change(w.alice, { type: 'edit', targetId: original.id, content: { kind: 'e2e', sealedTo: [] }, bodyJson: '{}', editWindowMs: WINDOW });
      assert.deepEqual(e2e, { kind: 'refused', reason: 'kind_mismatch' });
      stored(await w.remove(w.alice, original.id));
      assert.deepEqual(await w.edit(w.alice, original.id, 'after the delete'), { kind: 'refused', reason: 'message_deleted' });
    });

    it('refuses a change of a message the sender may not see or that does not exist, and a change by a non-member or former member', async () => {
      const w = await world();
      const inGroup = stored(await w.send(w.alice, { threadId: w.group }));
      assert.deepEqual(await w.edit(w.alice, inGroup.id, 'x'), { kind: 'refused', reason: 'no_message' }, "the target is in another thread than the change's");
      assert.deepEqual(await w.react(w.alice, 987654, '👍'), { kind: 'refused', reason: 'no_message' });
      assert.deepEqual(await w.react(w.dave, inGroup.id, '👍', true, { threadId: w.group }), { kind: 'refused', reason: 'no_thread' });
      // Dave joins after the message: it is outside what he may see.
      const added = await w.f.threads.changeGroup({
        threadId: w.group,
        actor: w.alice,
        expect: { actorRole: 'owner' },
        change: { kind: 'add', userIds: [w.dave.userId], maxMembers: 10, event: { event: 'members_added' } },
        now: NOW,
      });
      assert.equal(added.kind, 'changed');
      assert.deepEqual(await w.react(w.dave, inGroup.id, '👍', true, { threadId: w.group }), { kind: 'refused', reason: 'no_message' });
      const left = await w.f.threads.changeGroup({
        threadId: w.group,
        actor: w.bob,
        expect: { actorRole: 'member' },
        change: { kind: 'end', userId: w.bob.userId, newOwner: null, event: { event: 'member_left' } },
        now: NOW,
      });
      assert.equal(left.kind, 'changed');
      assert.deepEqual(await w.react(w.bob, inGroup.id, '👍', true, { threadId: w.group }), { kind: 'refused', reason: 'not_member' });
    });

    it('refuses an edit of a message a current member cannot see (they joined after it): the edit would show them its text', async () => {
      const w = await world();
      const before = stored(await w.send(w.alice, { threadId: w.group }));
      const added = await w.f.threads.changeGroup({
        threadId: w.group,
        actor: w.alice,
        expect: { actorRole: 'owner' },
        change: { kind: 'add', userIds: [w.dave.userId], maxMembers: 10, event: { event: 'members_added' } },
        now: NOW,
      });
      assert.equal(added.kind, 'changed');
      assert.deepEqual(await w.edit(w.alice, before.id, 'now dave would read this', { threadId: w.group }), { kind: 'refused', reason: 'unseen_by_members' });
      const after = stored(await w.send(w.alice, { threadId: w.group }));
      assert.equal(stored(await w.edit(w.alice, after.id, 'everyone saw it', { threadId: w.group })).change?.type, 'edit', 'a message every member sees stays editable');
      // Deleting and reacting carry no text: still allowed.
      stored(await w.react(w.bob, before.id, '👍', true, { threadId: w.group }));
      stored(await w.remove(w.alice, before.id, { threadId: w.group }));
    });

    it('checks an e2e edit exactly like an e2e send: sealed to the approved devices, refused as plaintext where encryption is required', async () => {
      const w = await world();
      const [a1, b1] = [await w.f.device(w.alice.userId, { approved: true }), await w.f.device(w.bob.userId, { approved: true })];
      const alice1 = { userId: w.alice.userId, deviceId: a1 };
      const original = stored(await w.send(alice1, { content: { kind: 'e2e', sealedTo: [a1, b1] }, bodyJson: '{"v":1}' }));
      const sealed = (sealedTo: readonly number[] | 'invalid') =>
        w.change(alice1, { type: 'edit', targetId: original.id, content: { kind: 'e2e', sealedTo }, bodyJson: '{"v":2}', editWindowMs: WINDOW });
      assert.deepEqual(await sealed([a1]), { kind: 'refused', reason: 'devices_changed', missing: [b1], extra: [] });
      assert.deepEqual(await sealed('invalid'), { kind: 'refused', reason: 'envelope_invalid' });
      const edit = stored(await sealed([b1, a1]));
      assert.equal(edit.kind, 'e2e');
      assert.equal((await w.shown(w.bob, original.id))?.bodyJson, '{"v":2}');
      // A plaintext message edited after the thread came to require encryption: the edit must be e2e, and a text one is not.
      const plain = stored(await w.send(w.alice, { threadId: w.group }));
      const required = await w.f.threads.changeGroup({
        threadId: w.group,
        actor: w.alice,
        expect: { actorRole: 'owner' },
        change: { kind: 'require_e2e', event: { event: 'e2e_required' } },
        now: NOW,
      });
      assert.equal(required.kind, 'changed');
      assert.deepEqual(await w.edit(w.alice, plain.id, 'x', { threadId: w.group }), { kind: 'refused', reason: 'encryption_required' });
    });

    it('deletes for everyone by the author or a group owner/admin, refuses a plain member, and answers a second delete unchanged', async () => {
      const w = await world();
      const mine = stored(await w.send(w.bob, { threadId: w.group }));
      const alices = stored(await w.send(w.alice, { threadId: w.group }));
      const carols = stored(await w.send(w.carol, { threadId: w.group }));
      const direct = stored(await w.send(w.alice));
      assert.deepEqual(await w.remove(w.bob, alices.id, { threadId: w.group }), { kind: 'refused', reason: 'not_author' });
      assert.deepEqual(await w.remove(w.bob, direct.id), { kind: 'refused', reason: 'not_author' }, 'nobody moderates a direct thread');
      const byAuthor = stored(await w.remove(w.bob, mine.id, { threadId: w.group }));
      assert.deepEqual([byAuthor.kind, byAuthor.bodyJson, byAuthor.change, byAuthor.targetId], ['text', 'null', { type: 'delete' }, mine.id]);
      stored(await w.remove(w.carol, alices.id, { threadId: w.group }));
      stored(await w.remove(w.alice, carols.id, { threadId: w.group }));
      const before = (await w.f.threads.details(w.alice.userId, w.group))?.summary.lastSeq;
      assert.deepEqual(await w.remove(w.bob, mine.id, { threadId: w.group }), { kind: 'unchanged' });
      assert.deepEqual(await w.remove(w.alice, mine.id, { threadId: w.group }), { kind: 'unchanged' });
      assert.equal((await w.f.threads.details(w.alice.userId, w.group))?.summary.lastSeq, before, 'an unchanged delete stores nothing');
      for (const id of [mine.id, alices.id, carols.id]) {
        const target = await w.shown(w.bob, id, w.group);
        assert.deepEqual([target?.bodyJson, typeof target?.deletedAt], ['null', 'number']);
      }
    });

    it('changes no system message nor change row: edit, delete and reaction refused alike', async () => {
      const w = await world();
      const [system] = await w.history(w.alice, w.group);
      const target = stored(await w.send(w.alice, { threadId: w.group }));
      const reaction = stored(await w.react(w.bob, target.id, '👍', true, { threadId: w.group }));
      for (const id of [system?.id as number, reaction.id]) {
        assert.deepEqual(await w.remove(w.alice, id, { threadId: w.group }), { kind: 'refused', reason: 'not_changeable' });
        assert.deepEqual(await w.react(w.alice, id, '👍', true, { threadId: w.group }), { kind: 'refused', reason: 'not_changeable' });
      }
    });

    it('stores deletes and reactions in a thread that requires encryption (they carry no content), and under require_e2e everywhere', async () => {
      const w = await world();
      const [a1, b1, c1] = [await w.f.device(w.alice.userId, { approved: true }), await w.f.device(w.bob.userId, { approved: true }), await w.f.device(w.carol.userId, { approved: true })];
      const required = await w.f.threads.changeGroup({
        threadId: w.group,
        actor: w.alice,
        expect: { actorRole: 'owner' },
        change: { kind: 'require_e2e', event: { event: 'e2e_required' } },
        now: NOW,
      });
      assert.equal(required.kind, 'changed');
      const alice1 = { userId: w.alice.userId, deviceId: a1 };
      const target = stored(await w.send(alice1, { threadId: w.group, content: { kind: 'e2e', sealedTo: [a1, b1, c1] }, bodyJson: '{"v":1}' }));
      const everywhere = { threadId: w.group, senderUserId: w.bob.userId, senderDeviceId: w.bob.deviceId, clientMsgId: 'r', now: NOW, requireE2eEverywhere: true };
      const reaction = stored(await w.f.messaging.appendMessage({ ...everywhere, change: { type: 'reaction', targetId: target.id, emoji: '👍', on: true } }));
      assert.deepEqual([reaction.kind, reaction.bodyJson], ['text', 'null']);
      stored(await w.remove(alice1, target.id, { threadId: w.group }));
      assert.equal((await w.shown(w.bob, target.id, w.group))?.deletedAt, NOW + 1000);
    });

    it('erases a deleted message: body, attachments, mentions, reactions, its edits, its attachment references, in the rows themselves', async () => {
      const w = await world();
      const photo = await w.f.seedUpload(w.alice.userId, w.alice.deviceId, 'upload-photo-000000001');
      const original = stored(
        await w.send(w.alice, { bodyJson: '{"text":"secret-1"}', mentions: [w.bob.userId], attachments: { json: JSON.stringify([{ id: photo }]), uploadIds: [photo] } }),
      );
      const edit = stored(await w.edit(w.alice, original.id, 'secret-2', { mentions: [w.bob.userId] }));
      stored(await w.react(w.bob, original.id, '👍'));
      assert.deepEqual(await w.f.attachmentRefs(), [[photo, w.direct, original.seq]]);
      stored(await w.remove(w.alice, original.id));
      assert.deepEqual(await w.f.messageRow(original.id), { body: 'null', attachments: null, mentions: null, reactions: null });
      assert.deepEqual(await w.f.messageRow(edit.id), { body: 'null', attachments: null, mentions: null, reactions: null });
      assert.deepEqual(await w.f.attachmentRefs(), []);
      const target = await w.shown(w.bob, original.id);
      assert.deepEqual(
        [target?.bodyJson, target?.attachmentsJson, target?.mentionsJson, target?.reactionsJson, target?.deletedAt],
        ['null', null, null, null, NOW + 1000],
      );
      const synced = await w.f.history.sync({ userId: w.bob.userId, deviceId: w.bob.deviceId, cursors: new Map([[w.direct, 0]]), pageMax: 100 });
      assert.equal(synced[0]?.messages.find((m) => m.id === edit.id)?.bodyJson, 'null', "the edit row's body is gone from sync too");
    });

    it('toggles reactions per user and emoji: on, a second on unchanged, off, an off of nothing unchanged; none on a deleted message', async () => {
      const w = await world();
      const target = stored(await w.send());
      const on = stored(await w.react(w.bob, target.id, '👍'));
      assert.deepEqual([on.change, on.targetId, on.bodyJson, on.kind], [{ type: 'reaction', emoji: '👍', on: true }, target.id, 'null', 'text']);
      stored(await w.react(w.alice, target.id, '🎉'));
      stored(await w.react(w.alice, target.id, '👍'));
      const reactions = async () => JSON.parse((await w.shown(w.bob, target.id))?.reactionsJson ?? 'null') as unknown;
      assert.deepEqual(await reactions(), [
        { emoji: '👍', user_ids: [w.bob.userId, w.alice.userId] },
        { emoji: '🎉', user_ids: [w.alice.userId] },
      ]);
      assert.deepEqual(await w.react(w.bob, target.id, '👍'), { kind: 'unchanged' });
      assert.deepEqual(await w.react(w.bob, target.id, '🎉', false), { kind: 'unchanged' });
      stored(await w.react(w.alice, target.id, '🎉', false));
      stored(await w.react(w.bob, target.id, '👍', false));
      assert.deepEqual(await reactions(), [{ emoji: '👍', user_ids: [w.alice.userId] }]);
      stored(await w.react(w.alice, target.id, '👍', false));
      assert.equal((await w.shown(w.bob, target.id))?.reactionsJson, null, 'no reaction left: null');
      stored(await w.remove(w.alice, target.id));
      assert.deepEqual(await w.react(w.bob, target.id, '👍'), { kind: 'refused', reason: 'message_deleted' });
    });

    it(`refuses more than ${MAX_REACTIONS_PER_USER} distinct emoji per user on one message; taking one off makes room`, async () => {
      const w = await world();
      const target = stored(await w.send());
      const emoji = ['😀', '😃', '😄', '😁', '😆', '😅', '😂', '🤣', '😊', '😇', '🙂', '🙃', '😉', '😌', '😍', '🥰', '😘', '😗', '😙', '😚', '😋'];
      for (const e of emoji.slice(0, MAX_REACTIONS_PER_USER)) stored(await w.react(w.bob, target.id, e));
      assert.deepEqual(await w.react(w.bob, target.id, emoji[MAX_REACTIONS_PER_USER] as string), { kind: 'refused', reason: 'too_many_reactions' });
      stored(await w.react(w.alice, target.id, emoji[MAX_REACTIONS_PER_USER] as string));
      stored(await w.react(w.bob, target.id, emoji[0] as string, false));
      stored(await w.react(w.bob, target.id, emoji[MAX_REACTIONS_PER_USER] as string));
    });

    it('aggregates concurrent reaction toggles from several users and both nodes: every toggle counted once', async () => {
      const w = await world();
      const other = await w.f.otherNode();
      const target = stored(await w.send(w.alice, { threadId: w.group }));
      const people = [w.alice, w.bob, w.carol];
      const emoji = ['👍', '🎉', '❤️', '🔥'];
      const toggles = people.flatMap((who, i) =>
        emoji.map((e, j) => {
          const request = { type: 'reaction' as const, targetId: target.id, emoji: e, on: true };
          const input = { threadId: w.group, senderUserId: who.userId, senderDeviceId: who.deviceId, clientMsgId: `r${i}-${j}`, now: NOW, requireE2eEverywhere: false, change: request };
          return (i + j) % 2 === 0 ? w.f.messaging.appendMessage(input) : other.messaging.appendMessage(input);
        }),
      );
      const outcomes = await Promise.all(toggles);
      const seqs = outcomes.map((o) => stored(o).seq).sort((a, b) => a - b);
      assert.deepEqual(seqs, Array.from({ length: 12 }, (_, i) => target.seq + 1 + i), 'one change row each, no gap');
      const reactions = JSON.parse((await w.shown(w.bob, target.id, w.group))?.reactionsJson ?? '[]') as Array<{ emoji: string; user_ids: number[] }>;
      assert.deepEqual(
        reactions.map((r) => [r.emoji, [...r.user_ids].sort((a, b) => a - b)]).sort(),
        emoji.map((e) => [e, people.map((p) => p.userId).sort((a, b) => a - b)]).sort(),
      );
    });

    it('answers a resend of a change as its duplicate, even when it would now be unchanged or refused; a client id of another thread is refused', async () => {
      const w = await world();
      const target = stored(await w.send());
      const reaction = stored(await w.react(w.bob, target.id, '👍', true, { clientMsgId: 'react-1' }));
      assert.deepEqual(await w.react(w.bob, target.id, '👍', true, { clientMsgId: 'react-1' }), { kind: 'duplicate', message: reaction });
      const edit = stored(await w.edit(w.alice, target.id, 'x', { clientMsgId: 'edit-1' }));
      assert.deepEqual(await w.edit(w.alice, target.id, 'x', { clientMsgId: 'edit-1', now: NOW + 10 * WINDOW }), { kind: 'duplicate', message: edit });
      const removal = stored(await w.remove(w.alice, target.id, { clientMsgId: 'delete-1' }));
      assert.deepEqual(await w.remove(w.alice, target.id, { clientMsgId: 'delete-1' }), { kind: 'duplicate', message: removal });
      stored(await w.send(w.alice, { threadId: w.group, clientMsgId: 'elsewhere' }));
      assert.deepEqual(await w.react(w.alice, target.id, '🎉', true, { clientMsgId: 'elsewhere' }), { kind: 'refused', reason: 'client_id_in_other_thread' });
    });
  });
}
