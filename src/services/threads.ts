import type { Clock } from '../clock.js';
import { ChatError } from '../errors.js';
import type { UserThreadRow } from '../storage/repositories/threads.js';
import type { Store } from '../storage/store.js';
import { type MessageStoreSettings, findActiveMembership, findMembership, storeSystemMessage, toMessage, unreadCount, visibleRange } from './message-store.js';
import { assertCanManage, assertCanRemove, assertCanSetRole, checkTitle } from './thread-rules.js';
import type { Fanout, Member, MemberRole, Message, Principal, ThreadView, User } from './types.js';
import { type UserRef, resolveUser } from './users.js';

export interface ThreadSettings extends MessageStoreSettings {
  readonly maxGroupMembers: number;
  /** messages.require_e2e: every thread shows as requiring encryption. */
  readonly requireE2e: boolean;
}

export interface ThreadDeps {
  readonly store: Store;
  readonly clock: Clock;
  readonly fanout: Fanout;
  readonly settings: ThreadSettings;
}

export interface ThreadDetails {
  readonly thread: ThreadView;
  readonly members: Member[];
}

/**
 * Direct threads and groups: finding, creating, membership and roles, per-user
 * settings, and the thread list. Every membership change is also a system
 * message in the thread, so it takes a seq and is ordered with the messages
 * around it (a removed member's history ends at their removal).
 */
export class ThreadService {
  constructor(private readonly deps: ThreadDeps) {}

  /** The direct thread with another user, created on first use; the same thread every time. */
  openDirect(principal: Principal, peer: UserRef): ThreadDetails {
    const { store, clock } = this.deps;
    const other = this.resolveUser(peer);
    if (other.id === principal.user.id) throw new ChatError('invalid_field', 'a direct thread needs another user', { field: 'user_id' });
    const [low, high] = principal.user.id < other.id ? [principal.user.id, other.id] : [other.id, principal.user.id];
    const key = `${low}:${high}`;
    const { threadId, created } = store.transaction(() => {
      const existing = store.threads.findDirect(key);
      if (existing) return { threadId: existing.id, created: false };
      const now = clock.now();
      const id = store.threads.insert('direct', null, key, principal.user.id, now);
      store.threads.addMember(id, low, 'member', 0, now);
      store.threads.addMember(id, high, 'member', 0, now);
      return { threadId: id, created: true };
    });
    if (created) this.deps.fanout.membership(threadId, [low, high], []);
    return this.details(principal, threadId);
  }

  createGroup(principal: Principal, title: string, members: readonly UserRef[], options: { e2eRequired?: boolean } = {}): ThreadDetails {
    const { store, clock, settings, fanout } = this.deps;
    const name = checkTitle(title);
    const others = this.resolveUsers(members).filter((user) => user.id !== principal.user.id);
    this.assertGroupSize(others.length + 1);
    const { threadId, message } = store.transaction(() => {
      const now = clock.now();
      const id = store.threads.insert('group', name, null, principal.user.id, now);
      store.threads.addMember(id, principal.user.id, 'owner', 0, now);
      for (const user of others) store.threads.addMember(id, user.id, 'member', 0, now);
      if (options.e2eRequired) store.threads.requireE2e(id);
      const created = storeSystemMessage(store, settings, actor(principal), id, { event: 'group_created', title: name, user_ids: others.map((u) => u.id) }, now);
      return { threadId: id, message: created };
    });
    fanout.membership(threadId, [principal.user.id, ...others.map((user) => user.id)], []);
    fanout.message(message);
    return this.details(principal, threadId);
  }

  addMembers(principal: Principal, threadId: number, members: readonly UserRef[]): ThreadDetails {
    const { store, clock, settings, fanout } = this.deps;
    const users = this.resolveUsers(members);
    const { added, message } = store.transaction(() => {
      const { thread, membership } = this.findGroup(principal, threadId);
      assertCanManage(membership.role, 'add members');
      const current = new Set(store.threads.members(threadId).map((m) => m.user_id));
      const fresh = users.filter((user) => !current.has(user.id));
      if (fresh.length === 0) return { added: [], message: undefined };
      this.assertGroupSize(current.size + fresh.length);
      const now = clock.now();
      // They see history from their own "added" message on.
      for (const user of fresh) store.threads.addMember(threadId, user.id, 'member', thread.last_seq, now);
      const stored = storeSystemMessage(store, settings, actor(principal), threadId, { event: 'members_added', user_ids: fresh.map((u) => u.id) }, now);
      return { added: fresh.map((u) => u.id), message: stored };
    });
    if (message) {
      fanout.membership(threadId, added, []);
      fanout.message(message);
    }
    return this.details(principal, threadId);
  }

  removeMember(principal: Principal, threadId: number, target: UserRef): void {
    const user = this.resolveUser(target);
    if (user.id === principal.user.id) {
      this.leave(principal, threadId);
      return;
    }
    this.endMembership(principal, threadId, user.id, (membership) => {
      const theirs = this.deps.store.threads.membership(threadId, user.id);
      if (!theirs || theirs.left_seq !== null) throw new ChatError('not_found', `${user.username} is not a member of this group`);
      assertCanRemove(membership.role, theirs.role);
      return { event: 'member_removed', user_id: user.id };
    });
  }

  /** Leaves a group. An owner who leaves hands the group to the longest-standing admin, or else member. */
  leave(principal: Principal, threadId: number): void {
    this.endMembership(principal, threadId, principal.user.id, (membership) => {
      if (membership.role !== 'owner') return { event: 'member_left', user_id: principal.user.id };
      const heir = this.deps.store.threads
        .members(threadId)
        .filter((m) => m.user_id !== principal.user.id)
        .sort((a, b) => rank(b.role) - rank(a.role))[0];
      if (heir) this.deps.store.threads.setRole(threadId, heir.user_id, 'owner');
      return { event: 'member_left', user_id: principal.user.id, ...(heir ? { new_owner: heir.user_id } : {}) };
    });
  }

  /**
   * From now on the thread takes end-to-end encrypted messages only; there is
   * no way back (turning it off would let a member quietly downgrade everyone).
   * Any member of a direct thread may; in a group, owners and admins.
   */
  requireE2e(principal: Principal, threadId: number): ThreadDetails {
    const { store, clock, settings, fanout } = this.deps;
    const message = store.transaction(() => {
      const { thread, membership } = findActiveMembership(store, threadId, principal.user.id);
      if (thread.kind === 'group') assertCanManage(membership.role, 'require encryption');
      if (thread.e2e_required === 1) return undefined;
      store.threads.requireE2e(threadId);
      return storeSystemMessage(store, settings, actor(principal), threadId, { event: 'e2e_required' }, clock.now());
    });
    if (message) fanout.message(message);
    return this.details(principal, threadId);
  }

  rename(principal: Principal, threadId: number, title: string): ThreadDetails {
    const name = checkTitle(title);
    this.changeGroup(principal, threadId, (membership) => {
      assertCanManage(membership.role, 'rename the group');
      this.deps.store.threads.setTitle(threadId, name);
      return { event: 'renamed', title: name };
    });
    return this.details(principal, threadId);
  }

  /** Makes a member admin or member; "owner" hands the group over and the old owner becomes admin. */
  setRole(principal: Principal, threadId: number, target: UserRef, role: MemberRole): ThreadDetails {
    const user = this.resolveUser(target);
    this.changeGroup(principal, threadId, (membership) => {
      assertCanSetRole(membership.role);
      const theirs = this.deps.store.threads.membership(threadId, user.id);
      if (!theirs || theirs.left_seq !== null) throw new ChatError('not_found', `${user.username} is not a member of this group`);
      if (user.id === principal.user.id) throw new ChatError('bad_request', 'to hand the group over, make another member owner');
      this.deps.store.threads.setRole(threadId, user.id, role);
      if (role === 'owner') this.deps.store.threads.setRole(threadId, principal.user.id, 'admin');
      return { event: 'role_changed', user_id: user.id, role };
    });
    return this.details(principal, threadId);
  }

  /** Per-user settings: mute (no pushes) and a free-text label. Undefined leaves a setting as it is. */
  updateSettings(principal: Principal, threadId: number, change: { muted?: boolean | undefined; label?: string | null | undefined }): ThreadDetails {
    const { store } = this.deps;
    store.transaction(() => {
      const { membership } = findMembership(store, threadId, principal.user.id);
      store.threads.setSettings(
        threadId,
        principal.user.id,
        change.muted ?? membership.muted === 1,
        change.label === undefined ? membership.label : change.label,
      );
    });
    return this.details(principal, threadId);
  }

  /** The threads the user is a member of now: what their live connections follow. */
  activeThreadIds(userId: number): number[] {
    return this.deps.store.threads.activeThreadIds(userId);
  }

  /** Every thread of the user, most recent activity first, with unread counts and the total. */
  list(principal: Principal): { threads: ThreadView[]; totalUnread: number } {
    const { store } = this.deps;
    return store.read(() => {
      const threads = store.threads.forUser(principal.user.id).map((row) => this.view(principal, row));
      return { threads, totalUnread: threads.reduce((sum, thread) => sum + thread.unread, 0) };
    });
  }

  /** The thread and its members; a former member sees the thread as they left it, without today's member list. */
  details(principal: Principal, threadId: number): ThreadDetails {
    const { store } = this.deps;
    const { membership } = findMembership(store, threadId, principal.user.id);
    const row = store.threads.forUserThread(principal.user.id, threadId);
    if (!row) throw new ChatError('not_found', `no thread ${threadId}`);
    const members = (membership.left_seq === null ? store.threads.members(threadId) : []).map((m) => ({
      user: { id: m.user_id, username: m.username, displayName: m.display_name },
      role: m.role,
      joinedAt: m.joined_at,
      readSeq: m.read_seq,
      deliveredSeq: m.delivered_seq,
    }));
    return { thread: this.view(principal, row), members };
  }

  private view(principal: Principal, row: UserThreadRow): ThreadView {
    const { store } = this.deps;
    const { from, to } = visibleRange(row, row.last_seq);
    const last = to > from ? store.messages.before(row.id, to + 1, from, 1)[0] : undefined;
    let peer: User | null = null;
    if (row.kind === 'direct') {
      const other = store.threads.members(row.id).find((m) => m.user_id !== principal.user.id);
      if (other) peer = { id: other.user_id, username: other.username, displayName: other.display_name };
    }
    return {
      id: row.id,
      kind: row.kind,
      title: row.title,
      createdAt: row.created_at,
      lastSeq: to,
      lastMessageAt: last?.created_at ?? null,
      lastMessage: last ? toMessage(last) : null,
      role: row.role,
      member: row.left_seq === null,
      leftSeq: row.left_seq,
      readSeq: row.read_seq,
      unread: unreadCount(row, row.last_seq),
      muted: row.muted === 1,
      label: row.label,
      memberCount: row.left_seq === null ? row.member_count : 0,
      e2eRequired: row.e2e_required === 1 || this.deps.settings.requireE2e,
      peer,
    };
  }

  /** A change to a group by a current member, recorded as a system message and fanned out. */
  private changeGroup(principal: Principal, threadId: number, change: (membership: { role: MemberRole }) => Record<string, unknown>): Message {
    const { store, clock, settings, fanout } = this.deps;
    const message = store.transaction(() => {
      const { membership } = this.findGroup(principal, threadId);
      const event = change(membership);
      return storeSystemMessage(store, settings, actor(principal), threadId, event, clock.now());
    });
    fanout.message(message);
    return message;
  }

  /** Ends `userId`'s membership: they receive the system message saying so, then nothing more. */
  private endMembership(principal: Principal, threadId: number, userId: number, change: (membership: { role: MemberRole }) => Record<string, unknown>): void {
    const { store, clock, settings, fanout } = this.deps;
    const message = store.transaction(() => {
      const { membership } = this.findGroup(principal, threadId);
      const event = change(membership);
      const stored = storeSystemMessage(store, settings, actor(principal), threadId, event, clock.now());
      store.threads.leave(threadId, userId, stored.seq);
      return stored;
    });
    fanout.message(message);
    fanout.membership(threadId, [], [userId]);
  }

  private findGroup(principal: Principal, threadId: number) {
    const found = findActiveMembership(this.deps.store, threadId, principal.user.id);
    if (found.thread.kind !== 'group') throw new ChatError('bad_request', 'direct threads have no members to manage; start a group instead');
    return found;
  }

  private assertGroupSize(size: number): void {
    const max = this.deps.settings.maxGroupMembers;
    if (size > max) throw new ChatError('invalid_field', `a group may have at most ${max} members`, { field: 'members' });
  }

  private resolveUser(ref: UserRef): User {
    return resolveUser(this.deps.store, ref);
  }

  private resolveUsers(refs: readonly UserRef[]): User[] {
    const byId = new Map<number, User>();
    for (const ref of refs) {
      const user = this.resolveUser(ref);
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
