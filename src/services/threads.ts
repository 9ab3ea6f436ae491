import type { Clock } from '../clock.js';
import { ChatError } from '../errors.js';
import type { Expectation, GroupChange, GroupState, ThreadStorage, ThreadSummary } from '../storage/ports/threads.js';
import { unreadCount, visibleRange } from '../storage/ports/visibility.js';
import { assertCanManage, assertCanRemove, assertCanSetRole, checkTitle } from './thread-rules.js';
import type { Fanout, Member, MemberRole, Message, Principal, ThreadView, User } from './types.js';
import { type UserRef, findUser } from './users.js';

export interface ThreadSettings {
  readonly maxGroupMembers: number;
  /** messages.require_e2e: every thread shows as requiring encryption. */
  readonly requireE2e: boolean;
}

export interface ThreadDeps {
  readonly storage: ThreadStorage;
  readonly clock: Clock;
  readonly fanout: Fanout;
  readonly settings: ThreadSettings;
}

export interface ThreadDetails {
  readonly thread: ThreadView;
  readonly members: Member[];
}

/** How often a change decided on roles that changed before it committed is decided again. */
const ATTEMPTS = 5;

/** A decided change: the unit to run and the roles it was decided on. */
interface Decision {
  readonly expect: Expectation;
  readonly change: GroupChange;
}

/**
 * Direct threads and groups: finding, creating, membership and roles, per-user
 * settings, and the thread list. Every membership change is also a system
 * message in the thread, so it takes a seq and is ordered with the messages
 * around it (a removed member's history ends at their removal).
 *
 * A change is decided here on a read of the group (the rules of
 * thread-rules.ts) and stored by one unit of work that refuses it as stale if
 * the roles it was decided on changed meanwhile; then it is decided again.
 */
export class ThreadService {
  constructor(private readonly deps: ThreadDeps) {}

  /** The direct thread with another user, created on first use; the same thread every time. */
  async openDirect(principal: Principal, peer: UserRef): Promise<ThreadDetails> {
    const other = await this.resolveUser(peer);
    if (other.id === principal.user.id) throw new ChatError('invalid_field', 'a direct thread needs another user', { field: 'user_id' });
    const pair = [principal.user.id, other.id] as const;
    const { threadId, created } = await this.deps.storage.openDirect({ userIds: pair, createdBy: principal.user.id, now: this.deps.clock.now() });
    if (created) this.deps.fanout.membership(threadId, [Math.min(...pair), Math.max(...pair)], []);
    return this.details(principal, threadId);
  }

  async createGroup(principal: Principal, title: string, members: readonly UserRef[], options: { e2eRequired?: boolean } = {}): Promise<ThreadDetails> {
    const { storage, clock, fanout } = this.deps;
    const name = checkTitle(title);
    const others = (await this.resolveUsers(members)).filter((user) => user.id !== principal.user.id);
    this.assertGroupSize(others.length + 1);
    const { threadId, message } = await storage.createGroup({
      title: name,
      actor: actor(principal),
      memberIds: others.map((u) => u.id),
      e2eRequired: options.e2eRequired === true,
      event: { event: 'group_created', title: name, user_ids: others.map((u) => u.id) },
      now: clock.now(),
    });
    // The thread's followers first (nobody yet), then the members with the message that made them members.
    fanout.message(message);
    fanout.membership(threadId, [principal.user.id, ...others.map((user) => user.id)], [], message);
    return this.details(principal, threadId);
  }

  async addMembers(principal: Principal, threadId: number, members: readonly UserRef[]): Promise<ThreadDetails> {
    const users = await this.resolveUsers(members);
    const { message, added } = await this.change(principal, threadId, (state) => {
      this.assertGroup(state);
      assertCanManage(state.actor.role, 'add members');
      const event = { event: 'members_added' };
      return { expect: { actorRole: state.actor.role }, change: { kind: 'add', userIds: users.map((u) => u.id), maxMembers: this.deps.settings.maxGroupMembers, event } };
    });
    if (message) {
      // The members so far get it on the thread; the added ones with the change (see Fanout.membership).
      this.deps.fanout.message(message);
      this.deps.fanout.membership(threadId, added, [], message);
    }
    return this.details(principal, threadId);
  }

  async removeMember(principal: Principal, threadId: number, target: UserRef): Promise<void> {
    const user = await this.resolveUser(target);
    if (user.id === principal.user.id) return this.leave(principal, threadId);
    await this.endMembership(principal, threadId, user.id, (state) => {
      this.assertGroup(state);
      const theirs = state.members.find((m) => m.userId === user.id);
      if (!theirs) throw new ChatError('not_found', `${user.username} is not a member of this group`);
      assertCanRemove(state.actor.role, theirs.role);
      return {
        expect: { actorRole: state.actor.role, members: [theirs] },
        change: { kind: 'end', userId: user.id, newOwner: null, event: { event: 'member_removed', user_id: user.id } },
      };
    });
  }

  /** Leaves a group. An owner who leaves hands the group to the longest-standing admin, or else member. */
  async leave(principal: Principal, threadId: number): Promise<void> {
    const self = principal.user.id;
    await this.endMembership(principal, threadId, self, (state) => {
      this.assertGroup(state);
      const role = state.actor.role;
      if (role !== 'owner') return { expect: { actorRole: role }, change: { kind: 'end', userId: self, newOwner: null, event: { event: 'member_left', user_id: self } } };
      const heir = state.members.filter((m) => m.userId !== self).sort((a, b) => rank(b.role) - rank(a.role))[0];
      const event = { event: 'member_left', user_id: self, ...(heir ? { new_owner: heir.userId } : {}) };
      return { expect: { actorRole: role, members: heir ? [heir] : [] }, change: { kind: 'end', userId: self, newOwner: heir?.userId ?? null, event } };
    });
  }

  /**
   * From now on the thread takes end-to-end encrypted messages only; there is
   * no way back (turning it off would let a member quietly downgrade everyone).
   * Any member of a direct thread may; in a group, owners and admins.
   */
  async requireE2e(principal: Principal, threadId: number): Promise<ThreadDetails> {
    const { message } = await this.change(principal, threadId, (state) => {
      if (state.kind === 'group') assertCanManage(state.actor.role, 'require encryption');
      return { expect: { actorRole: state.actor.role }, change: { kind: 'require_e2e', event: { event: 'e2e_required' } } };
    });
    if (message) this.deps.fanout.message(message);
    return this.details(principal, threadId);
  }

  async rename(principal: Principal, threadId: number, title: string): Promise<ThreadDetails> {
    const name = checkTitle(title);
    const { message } = await this.change(principal, threadId, (state) => {
      this.assertGroup(state);
      assertCanManage(state.actor.role, 'rename the group');
      return { expect: { actorRole: state.actor.role }, change: { kind: 'rename', title: name, event: { event: 'renamed', title: name } } };
    });
    if (message) this.deps.fanout.message(message);
    return this.details(principal, threadId);
  }

  /** Makes a member admin or member; "owner" hands the group over and the old owner becomes admin. */
  async setRole(principal: Principal, threadId: number, target: UserRef, role: MemberRole): Promise<ThreadDetails> {
    const user = await this.resolveUser(target);
    const { message } = await this.change(principal, threadId, (state) => {
      this.assertGroup(state);
      assertCanSetRole(state.actor.role);
      const theirs = state.members.find((m) => m.userId === user.id);
      if (!theirs) throw new ChatError('not_found', `${user.username} is not a member of this group`);
      if (user.id === principal.user.id) throw new ChatError('bad_request', 'to hand the group over, make another member owner');
      const roles = [{ userId: user.id, role }, ...(role === 'owner' ? [{ userId: principal.user.id, role: 'admin' as const }] : [])];
      return { expect: { actorRole: state.actor.role, members: [theirs] }, change: { kind: 'roles', roles, event: { event: 'role_changed', user_id: user.id, role } } };
    });
    if (message) this.deps.fanout.message(message);
    return this.details(principal, threadId);
  }

  /** Per-user settings: mute (no pushes) and a free-text label. Undefined leaves a setting as it is. */
  async updateSettings(principal: Principal, threadId: number, change: { muted?: boolean | undefined; label?: string | null | undefined }): Promise<ThreadDetails> {
    const found = await this.deps.storage.updateSettings({ threadId, userId: principal.user.id, muted: change.muted, label: change.label });
    if (!found) throw new ChatError('not_found', `no thread ${threadId}`);
    return this.details(principal, threadId);
  }

  /** Every thread of the user, most recent activity first, with unread counts and the total. */
  async list(principal: Principal): Promise<{ threads: ThreadView[]; totalUnread: number }> {
    const threads = (await this.deps.storage.list(principal.user.id)).map((summary) => this.view(summary));
    return { threads, totalUnread: threads.reduce((sum, thread) => sum + thread.unread, 0) };
  }

  /** The thread and its members; a former member sees the thread as they left it, without today's member list. */
  async details(principal: Principal, threadId: number): Promise<ThreadDetails> {
    const found = await this.deps.storage.details(principal.user.id, threadId);
    if (!found) throw new ChatError('not_found', `no thread ${threadId}`);
    return { thread: this.view(found.summary), members: found.members };
  }

  private view(summary: ThreadSummary): ThreadView {
    const { to } = visibleRange(summary, summary.lastSeq);
    const member = summary.leftSeq === null;
    return {
      id: summary.id,
      kind: summary.kind,
      title: summary.title,
      createdAt: summary.createdAt,
      lastSeq: to,
      lastMessageAt: summary.lastMessage?.createdAt ?? null,
      lastMessage: summary.lastMessage,
      role: summary.role,
      member,
      leftSeq: summary.leftSeq,
      readSeq: summary.readSeq,
      unread: unreadCount(summary, summary.lastSeq, summary.uncounted),
      muted: summary.muted,
      label: summary.label,
      memberCount: member ? summary.memberCount : 0,
      e2eRequired: summary.e2eRequired || this.deps.settings.requireE2e,
      peer: summary.peer,
    };
  }

  /** Ends `userId`'s membership: they receive the system message saying so, then nothing more. */
  private async endMembership(principal: Principal, threadId: number, userId: number, decide: (state: GroupState) => Decision): Promise<void> {
    const { message } = await this.change(principal, threadId, decide);
    if (message) this.deps.fanout.message(message);
    this.deps.fanout.membership(threadId, [], [userId]);
  }

  /**
   * Reads the thread as the actor, a current member, sees it; decides; stores
   * the change if the roles it was decided on still hold, else decides again.
   */
  private async change(principal: Principal, threadId: number, decide: (state: GroupState) => Decision): Promise<{ message: Message | null; added: readonly number[] }> {
    const { storage, clock } = this.deps;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const state = await storage.groupState(threadId, principal.user.id);
      if (!state) throw new ChatError('not_found', `no thread ${threadId}`);
      if (state.actor.left) throw new ChatError('forbidden', `you are no longer a member of thread ${threadId}`);
      const { expect, change } = decide(state);
      const outcome = await storage.changeGroup({ threadId, actor: actor(principal), expect, change, now: clock.now() });
      if (outcome.kind === 'changed') return outcome;
      if (outcome.kind === 'refused') this.assertGroupSize(this.deps.settings.maxGroupMembers + 1);
    }
    throw new ChatError('unavailable', `thread ${threadId} kept changing; try again`);
  }

  private assertGroup(state: GroupState): void {
    if (state.kind !== 'group') throw new ChatError('bad_request', 'direct threads have no members to manage; start a group instead');
  }

  private assertGroupSize(size: number): void {
    const max = this.deps.settings.maxGroupMembers;
    if (size > max) throw new ChatError('invalid_field', `a group may have at most ${max} members`, { field: 'members' });
  }

  private resolveUser(ref: UserRef): Promise<User> {
    return findUser(this.deps.storage, ref);
  }

  private async resolveUsers(refs: readonly UserRef[]): Promise<User[]> {
    const byId = new Map<number, User>();
    for (const ref of refs) {
      const user = await this.resolveUser(ref);
      byId.set(user.id, user);
    }
    return [...byId.values()];
  }
}

function actor(principal: Principal): { userId: number; deviceId: number } {
  return { userId: principal.user.id, deviceId: principal.deviceId };
}

function rank(role: MemberRole): number {
  return role === 'owner' ? 2 : role === 'admin' ? 1 : 0;
}
