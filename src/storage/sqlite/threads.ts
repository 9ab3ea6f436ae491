import type { StoredMessage } from '../ports/messaging.js';
import type { Actor, Expectation, GroupChange, GroupOutcome, GroupState, StoredMember, StoredUser, ThreadEvent, ThreadStorage, ThreadSummary } from '../ports/threads.js';
import type { StoredAccount } from '../ports/accounts.js';
import type { UserThreadRow } from '../repositories/threads.js';
import type { Store } from '../store.js';
import { mapped, toStoredAccount } from './rows.js';
import { type AppendSettings, insertSystemMessage, seenRange, toStoredMessage, uncountedOf } from './append.js';

/** ThreadStorage on SQLite: writes through the WriteBatcher's group commit, multi-query reads in one read transaction. */
export class SqliteThreadStorage implements ThreadStorage {
  constructor(
    private readonly store: Store,
    private readonly settings: AppendSettings,
  ) {}

  async userById(id: number): Promise<StoredAccount | undefined> {
    return mapped(this.store.users.findById(id), toStoredAccount);
  }

  async userByUsername(username: string): Promise<StoredAccount | undefined> {
    return mapped(this.store.users.findByUsername(username), toStoredAccount);
  }

  async list(userId: number): Promise<ThreadSummary[]> {
    return this.store.read(() => this.store.threads.forUser(userId).map((row) => this.summary(userId, row)));
  }

  async details(userId: number, threadId: number): Promise<{ summary: ThreadSummary; members: StoredMember[] } | undefined> {
    const { store } = this;
    return store.read(() => {
      const row = store.threads.forUserThread(userId, threadId);
      if (!row) return undefined;
      const members = (row.left_seq === null ? store.threads.members(threadId) : []).map((m) => ({
        user: { id: m.user_id, username: m.username, displayName: m.display_name },
        role: m.role,
        joinedAt: m.joined_at,
        readSeq: m.read_seq,
        deliveredSeq: m.delivered_seq,
      }));
      return { summary: this.summary(userId, row), members };
    });
  }

  async groupState(threadId: number, userId: number): Promise<GroupState | undefined> {
    const { store } = this;
    return store.read(() => {
      const membership = store.threads.membership(threadId, userId);
      const thread = membership ? store.threads.findById(threadId) : undefined;
      if (!membership || !thread) return undefined;
      return {
        kind: thread.kind,
        e2eRequired: thread.e2e_required === 1,
        actor: { role: membership.role, left: membership.left_seq !== null },
        members: store.threads.members(threadId).map((m) => ({ userId: m.user_id, role: m.role })),
      };
    });
  }

  openDirect(input: { userIds: readonly [number, number]; createdBy: number; now: number }): Promise<{ threadId: number; created: boolean }> {
    const { store } = this;
    const [low, high] = [...input.userIds].sort((a, b) => a - b) as [number, number];
    return store.batcher.submit(() => {
      const existing = store.threads.findDirect(`${low}:${high}`);
      if (existing) return { threadId: existing.id, created: false };
      const id = store.threads.insert('direct', null, `${low}:${high}`, input.createdBy, input.now);
      store.threads.addMember(id, low, 'member', 0, input.now);
      store.threads.addMember(id, high, 'member', 0, input.now);
      return { threadId: id, created: true };
    });
  }

  createGroup(input: { title: string; actor: Actor; memberIds: readonly number[]; e2eRequired: boolean; event: ThreadEvent; now: number }): Promise<{ threadId: number; message: StoredMessage }> {
    const { store, settings } = this;
    return store.batcher.submit(() => {
      const { now, actor } = input;
      const id = store.threads.insert('group', input.title, null, actor.userId, now);
      store.threads.addMember(id, actor.userId, 'owner', 0, now);
      for (const userId of input.memberIds) store.threads.addMember(id, userId, 'member', 0, now);
      if (input.e2eRequired) store.threads.requireE2e(id);
      return { threadId: id, message: insertSystemMessage(store, settings, actor, id, input.event, now) };
    });
  }

  changeGroup(input: { threadId: number; actor: Actor; expect: Expectation; change: GroupChange; now: number }): Promise<GroupOutcome> {
    return this.store.batcher.submit(() => this.change(input));
  }

  private change(input: { threadId: number; actor: Actor; expect: Expectation; change: GroupChange; now: number }): GroupOutcome {
    const { store, settings } = this;
    const { threadId, actor, change, now } = input;
    if (!this.holds(threadId, actor.userId, input.expect)) return { kind: 'stale' };
    const system = (event: ThreadEvent): StoredMessage => insertSystemMessage(store, settings, actor, threadId, event, now);
    switch (change.kind) {
      case 'add': {
        const thread = store.threads.findById(threadId);
        const current = new Set(store.threads.members(threadId).map((m) => m.user_id));
        const fresh = [...new Set(change.userIds)].filter((id) => !current.has(id));
        if (!thread || fresh.length === 0) return { kind: 'changed', message: null, added: [] };
        if (current.size + fresh.length > change.maxMembers) return { kind: 'refused', reason: 'group_full' };
        // They see history from their own "added" message on.
        for (const userId of fresh) store.threads.addMember(threadId, userId, 'member', thread.last_seq, now);
        return { kind: 'changed', message: system({ ...change.event, user_ids: fresh }), added: fresh };
      }
      case 'end': {
        if (change.newOwner !== null) store.threads.setRole(threadId, change.newOwner, 'owner');
        const message = system(change.event);
        store.threads.leave(threadId, change.userId, message.seq);
        return { kind: 'changed', message, added: [] };
      }
      case 'rename':
        store.threads.setTitle(threadId, change.title);
        return { kind: 'changed', message: system(change.event), added: [] };
      case 'roles':
        for (const { userId, role } of change.roles) store.threads.setRole(threadId, userId, role);
        return { kind: 'changed', message: system(change.event), added: [] };
      case 'require_e2e':
        if (store.threads.findById(threadId)?.e2e_required === 1) return { kind: 'changed', message: null, added: [] };
        store.threads.requireE2e(threadId);
        return { kind: 'changed', message: system(change.event), added: [] };
    }
  }

  /** Whether the roles the change was decided on still hold. */
  private holds(threadId: number, actorId: number, expect: Expectation): boolean {
    const current = (userId: number) => {
      const row = this.store.threads.membership(threadId, userId);
      return row && row.left_seq === null ? row.role : undefined;
    };
    if (current(actorId) !== expect.actorRole) return false;
    return (expect.members ?? []).every((m) => current(m.userId) === m.role);
  }

  updateSettings(input: { threadId: number; userId: number; muted: boolean | undefined; label: string | null | undefined }): Promise<boolean> {
    const { store } = this;
    return store.batcher.submit(() => {
      const membership = store.threads.membership(input.threadId, input.userId);
      if (!membership) return false;
      const muted = input.muted ?? membership.muted === 1;
      store.threads.setSettings(input.threadId, input.userId, muted, input.label === undefined ? membership.label : input.label);
      return true;
    });
  }

  private summary(userId: number, row: UserThreadRow): ThreadSummary {
    const { store } = this;
    const { from, to } = seenRange(row, row.last_seq);
    // The last message in its latest state: never a change row, nor one the user hid.
    const last = to > from ? store.messages.visibleBefore(userId, row.id, to + 1, from, 1)[0] : undefined;
    let peer: StoredUser | null = null;
    if (row.kind === 'direct') {
      const other = store.threads.members(row.id).find((m) => m.user_id !== userId);
      if (other) peer = { id: other.user_id, username: other.username, displayName: other.display_name };
    }
    return {
      id: row.id,
      kind: row.kind,
      title: row.title,
      createdAt: row.created_at,
      lastSeq: row.last_seq,
      e2eRequired: row.e2e_required === 1,
      role: row.role,
      joinedSeq: row.joined_seq,
      leftSeq: row.left_seq,
      readSeq: row.read_seq,
      muted: row.muted === 1,
      label: row.label,
      memberCount: row.member_count,
      lastMessage: last ? toStoredMessage(last) : null,
      uncounted: uncountedOf(row),
      peer,
    };
  }
}
