import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isChatError } from '../../src/errors.js';
import { ThreadService } from '../../src/services/threads.js';
import type { ThreadStorage } from '../../src/storage/ports/threads.js';
import { serviceWorld } from '../helpers/service-world.js';

async function refused(promise: Promise<unknown>, code: string, message?: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isChatError(error), String(error));
    assert.equal(error.code, code, error.message);
    if (message !== undefined) assert.equal(error.message, message);
    return true;
  });
}

/** A group of alice (owner), bob and carol (members); dave outside it. */
async function group(options: Parameters<typeof serviceWorld>[0] = {}) {
  const w = await serviceWorld(options);
  const [alice, bob, carol, dave] = [await w.principal('alice'), await w.principal('bob'), await w.principal('carol'), await w.principal('dave')];
  const { thread } = await w.threads.createGroup(alice, '  friends ', [{ userId: bob.user.id }, { username: 'carol' }, { userId: alice.user.id }]);
  return { ...w, alice, bob, carol, dave, threadId: thread.id, thread };
}

const bodies = (messages: ReadonlyArray<{ bodyJson: string }>) => messages.map((m) => JSON.parse(m.bodyJson) as Record<string, unknown>);

describe('ThreadService in process', () => {
  it('creates a group with its owner, members and a system message, which the members get with the membership', async () => {
    const w = await group();
    assert.equal(w.thread.title, 'friends');
    assert.equal(w.thread.role, 'owner');
    assert.equal(w.thread.memberCount, 3);
    assert.equal(w.thread.lastSeq, 1);
    assert.deepEqual(w.fanout.log, [`message ${w.threadId}:1`, `membership ${w.threadId} +[${w.alice.user.id},${w.bob.user.id},${w.carol.user.id}] -[] with ${w.threadId}:1`]);
    assert.deepEqual(bodies(w.fanout.messages), [{ event: 'group_created', title: 'friends', user_ids: [w.bob.user.id, w.carol.user.id] }]);
  });

  it('opens one direct thread per pair, announcing the membership once', async () => {
    const w = await serviceWorld();
    const [alice, bob] = [await w.principal('alice'), await w.principal('bob')];
    const first = await w.threads.openDirect(alice, { userId: bob.user.id });
    const again = await w.threads.openDirect(bob, { username: 'alice' });
    assert.equal(again.thread.id, first.thread.id);
    assert.equal(again.thread.peer?.id, alice.user.id);
    assert.equal(w.fanout.log.filter((line) => line.startsWith('membership')).length, 1);
    await refused(w.threads.openDirect(alice, { userId: alice.user.id }), 'invalid_field', 'a direct thread needs another user');
    await refused(w.threads.openDirect(alice, { username: 'nobody' }), 'not_found', 'no user "nobody"');
    await refused(w.threads.addMembers(alice, first.thread.id, [{ userId: bob.user.id }]), 'bad_request');
  });

  it('lets owners and admins add members, up to the group limit; members may not', async () => {
    const w = await group({ maxGroupMembers: 4 });
    await refused(w.threads.addMembers(w.bob, w.threadId, [{ userId: w.dave.user.id }]), 'forbidden', "only the group's owner and admins may add members");
    const eve = await w.principal('eve');
    await refused(w.threads.addMembers(w.alice, w.threadId, [{ userId: w.dave.user.id }, { userId: eve.user.id }]), 'invalid_field', 'a group may have at most 4 members');
    w.fanout.log.length = 0;
    const details = await w.threads.addMembers(w.alice, w.threadId, [{ userId: w.dave.user.id }, { userId: w.bob.user.id }]);
    assert.equal(details.members.length, 4);
    assert.deepEqual(w.fanout.log, [`message ${w.threadId}:2`, `membership ${w.threadId} +[${w.dave.user.id}] -[] with ${w.threadId}:2`]);
    // Adding only current members changes nothing and tells nobody.
    w.fanout.log.length = 0;
    await w.threads.addMembers(w.alice, w.threadId, [{ userId: w.bob.user.id }]);
    assert.deepEqual(w.fanout.log, []);
    const daves = await w.history.history(w.dave, w.threadId, { after: 0 }, 10);
    assert.deepEqual(daves.messages.map((m) => m.seq), [2], 'a new member sees history from their own "added" message on');
  });

  it('follows the rank rules for removal and role changes', async () => {
    const w = await group();
    await refused(w.threads.setRole(w.bob, w.threadId, { userId: w.carol.user.id }, 'admin'), 'forbidden', "only the group's owner may change roles");
    await w.threads.setRole(w.alice, w.threadId, { userId: w.bob.user.id }, 'admin');
    await refused(w.threads.removeMember(w.bob, w.threadId, { userId: w.alice.user.id }), 'forbidden', 'a group admin cannot remove the owner');
    await refused(w.threads.setRole(w.alice, w.threadId, { userId: w.alice.user.id }, 'admin'), 'bad_request');
    await refused(w.threads.setRole(w.alice, w.threadId, { userId: w.dave.user.id }, 'admin'), 'not_found', 'dave is not a member of this group');
    w.fanout.log.length = 0;
    await w.threads.removeMember(w.bob, w.threadId, { userId: w.carol.user.id });
    assert.deepEqual(w.fanout.log.slice(-2), [`message ${w.threadId}:3`, `membership ${w.threadId} +[] -[${w.carol.user.id}]`]);
    await refused(w.messaging.send(w.carol, { threadId: w.threadId, clientMsgId: 'c', kind: 'text', bodyJson: '"x"' }), 'forbidden');
    const carols = await w.threads.details(w.carol, w.threadId);
    assert.equal(carols.thread.member, false);
    assert.equal(carols.thread.lastSeq, 3, 'a removed member sees up to their removal');
    assert.deepEqual(carols.members, []);
  });

  it('hands the group over: by role change (old owner becomes admin), or to the highest-ranked member when the owner leaves', async () => {
    const w = await group();
    await w.threads.setRole(w.alice, w.threadId, { userId: w.carol.user.id }, 'admin');
    await w.threads.leave(w.alice, w.threadId);
    const last = w.fanout.messages.at(-1);
    assert.deepEqual(last && JSON.parse(last.bodyJson), { event: 'member_left', user_id: w.alice.user.id, new_owner: w.carol.user.id });
    assert.equal((await w.threads.details(w.carol, w.threadId)).thread.role, 'owner');
    await w.threads.setRole(w.carol, w.threadId, { userId: w.bob.user.id }, 'owner');
    const details = await w.threads.details(w.carol, w.threadId);
    assert.equal(details.thread.role, 'admin');
    assert.equal(details.members.find((m) => m.user.id === w.bob.user.id)?.role, 'owner');
    await refused(w.threads.rename(w.alice, w.threadId, 'x'), 'forbidden', `you are no longer a member of thread ${w.threadId}`);
    await refused(w.threads.rename(w.dave, w.threadId, 'x'), 'not_found', `no thread ${w.threadId}`);
  });

  it('renames, requires encryption once (no second message), and keeps per-user settings', async () => {
    const w = await group();
    await refused(w.threads.rename(w.bob, w.threadId, 'x'), 'forbidden', "only the group's owner and admins may rename the group");
    await refused(w.threads.rename(w.alice, w.threadId, '   '), 'invalid_field');
    assert.equal((await w.threads.rename(w.alice, w.threadId, 'family')).thread.title, 'family');
    await refused(w.threads.requireE2e(w.bob, w.threadId), 'forbidden');
    assert.equal((await w.threads.requireE2e(w.alice, w.threadId)).thread.e2eRequired, true);
    const before = w.fanout.messages.length;
    await w.threads.requireE2e(w.alice, w.threadId);
    assert.equal(w.fanout.messages.length, before, 'no way back, and no second message');
    const muted = await w.threads.updateSettings(w.bob, w.threadId, { muted: true });
    assert.equal(muted.thread.muted, true);
    const labelled = await w.threads.updateSettings(w.bob, w.threadId, { label: 'work' });
    assert.deepEqual([labelled.thread.muted, labelled.thread.label], [true, 'work']);
    await refused(w.threads.updateSettings(w.dave, w.threadId, { muted: true }), 'not_found');
  });

  it('lists threads with unread counts and the total, most recent first', async () => {
    const w = await group();
    const { thread: pair } = await w.threads.openDirect(w.bob, { userId: w.alice.user.id });
    w.clock.advance(1000);
    await w.messaging.send(w.bob, { threadId: pair.id, clientMsgId: '1', kind: 'text', bodyJson: '"hi"' });
    const list = await w.threads.list(w.alice);
    // Alice's own system message (group_created) is not unread to her.
    assert.deepEqual(list.threads.map((t) => [t.id, t.unread]), [[pair.id, 1], [w.threadId, 0]]);
    assert.equal(list.totalUnread, 1);
    assert.equal((await w.threads.list(w.bob)).totalUnread, 1, 'the group was created by alice: unread to bob');
    assert.equal(list.threads[0]?.lastMessage?.bodyJson, '"hi"');
  });

  it('refuses a group above the limit at creation', async () => {
    const w = await serviceWorld({ maxGroupMembers: 2 });
    const [alice, bob, carol] = [await w.principal('alice'), await w.principal('bob'), await w.principal('carol')];
    await refused(w.threads.createGroup(alice, 'g', [{ userId: bob.user.id }, { userId: carol.user.id }]), 'invalid_field', 'a group may have at most 2 members');
    assert.deepEqual(await w.threads.list(alice), { threads: [], totalUnread: 0 }, 'nothing stored');
  });

  it('decides again when the roles a change was decided on changed before it committed', async () => {
    const w = await group();
    // Between alice's read and her rename, she hands the group to bob: the rename was decided as owner.
    let raced = false;
    const storage: ThreadStorage = Object.create(w.fixture.threads) as ThreadStorage;
    storage.changeGroup = async (input) => {
      if (!raced) {
        raced = true;
        await w.threads.setRole(w.alice, w.threadId, { userId: w.bob.user.id }, 'owner');
      }
      return w.fixture.threads.changeGroup(input);
    };
    const racing = new ThreadService({ storage, clock: w.clock, fanout: w.fanout, settings: { requireE2e: false, maxGroupMembers: 10 } });
    // As admin now, alice may still rename: decided again, it goes through.
    assert.equal((await racing.rename(w.alice, w.threadId, 'renamed')).thread.title, 'renamed');
    assert.equal(raced, true);
  });
});
