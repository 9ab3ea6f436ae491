import type { StoredAccount, UserLookup } from './accounts.js';
import type { StoredMessage } from './messaging.js';
import type { Uncounted } from './visibility.js';

export type ThreadKind = 'direct' | 'group';
export type MemberRole = 'owner' | 'admin' | 'member';

/** A user as a thread shows them. */
export type StoredUser = Pick<StoredAccount, 'id' | 'username' | 'displayName'>;

/** A thread as one user sees it in their list. */
export interface ThreadSummary {
  readonly id: number;
  readonly kind: ThreadKind;
  readonly title: string | null;
  readonly createdAt: number;
  readonly lastSeq: number;
  readonly e2eRequired: boolean;
  readonly role: MemberRole;
  readonly joinedSeq: number;
  readonly leftSeq: number | null;
  readonly readSeq: number;
  readonly muted: boolean;
  readonly label: string | null;
  /** Current members of the thread. */
  readonly memberCount: number;
  /** The last message the user may see, if any: never a change row, nor one the user hid. */
  readonly lastMessage: StoredMessage | null;
  /** For unreadCount(summary, summary.lastSeq, summary.uncounted): the change rows at the ends of the unread range. */
  readonly uncounted: Uncounted;
  /** A direct thread's other member. */
  readonly peer: StoredUser | null;
}

export interface StoredMember {
  readonly user: StoredUser;
  readonly role: MemberRole;
  readonly joinedAt: number;
  readonly readSeq: number;
  readonly deliveredSeq: number;
}

/** What deciding on a change needs: the thread, the actor's membership, the current members (oldest first). */
export interface GroupState {
  readonly kind: ThreadKind;
  readonly e2eRequired: boolean;
  readonly actor: { readonly role: MemberRole; readonly left: boolean };
  readonly members: ReadonlyArray<{ readonly userId: number; readonly role: MemberRole }>;
}

export interface Actor {
  readonly userId: number;
  readonly deviceId: number;
}

/** A system message's body: what happened, as JSON. */
export type ThreadEvent = Readonly<Record<string, unknown>>;

/** The roles a change was decided on: the unit refuses it as stale when they changed before it could commit. */
export interface Expectation {
  /** The actor is a current member with this role. */
  readonly actorRole: MemberRole;
  /** Other users that must still be current members with these roles (the target, an heir). */
  readonly members?: ReadonlyArray<{ readonly userId: number; readonly role: MemberRole }>;
}

export type GroupChange =
  /** Adds those not already members (they see history from the system message on; `event` gets `user_ids` of those added). */
  | { readonly kind: 'add'; readonly userIds: readonly number[]; readonly maxMembers: number; readonly event: ThreadEvent }
  /** Ends `userId`'s membership at the system message; `newOwner` takes the group over. */
  | { readonly kind: 'end'; readonly userId: number; readonly newOwner: number | null; readonly event: ThreadEvent }
  | { readonly kind: 'rename'; readonly title: string; readonly event: ThreadEvent }
  /** Sets roles (a hand-over sets two). */
  | { readonly kind: 'roles'; readonly roles: ReadonlyArray<{ readonly userId: number; readonly role: MemberRole }>; readonly event: ThreadEvent }
  /** One-way: no message when the thread already requires it. */
  | { readonly kind: 'require_e2e'; readonly event: ThreadEvent };

export type GroupOutcome =
  /** `message`: the system message recording it (null: nothing changed); `added`: who was added. */
  | { readonly kind: 'changed'; readonly message: StoredMessage | null; readonly added: readonly number[] }
  | { readonly kind: 'stale' }
  | { readonly kind: 'refused'; readonly reason: 'group_full' };

/**
 * The storage of threads and memberships (ThreadService). Rules stay in the
 * service: it reads a group's state, decides, and sends the change with the
 * roles it decided on as a precondition; the unit refuses with `stale` when
 * they no longer hold at commit (the service reads again and decides again).
 * Users are looked up as everywhere else (UserLookup: deleted ones found too, the caller checks).
 */
export interface ThreadStorage extends UserLookup {
  /** Every thread the user is or was in, most recent activity first. */
  list(userId: number): Promise<ThreadSummary[]>;
  /** One thread as the user sees it, with its current members (none for a former member); undefined if never in it. */
  details(userId: number, threadId: number): Promise<{ readonly summary: ThreadSummary; readonly members: StoredMember[] } | undefined>;
  /** Undefined if the user was never in the thread. */
  groupState(threadId: number, userId: number): Promise<GroupState | undefined>;
  /** The direct thread of the two users, created with both as members if there is none. */
  openDirect(input: { readonly userIds: readonly [number, number]; readonly createdBy: number; readonly now: number }): Promise<{ readonly threadId: number; readonly created: boolean }>;
  /** A group with its owner and members, and its first system message. */
  createGroup(input: {
    readonly title: string;
    readonly actor: Actor;
    readonly memberIds: readonly number[];
    readonly e2eRequired: boolean;
    readonly event: ThreadEvent;
    readonly now: number;
  }): Promise<{ readonly threadId: number; readonly message: StoredMessage }>;
  /** A change to a thread by `actor`, with its system message, if `expect` still holds at commit. */
  changeGroup(input: { readonly threadId: number; readonly actor: Actor; readonly expect: Expectation; readonly change: GroupChange; readonly now: number }): Promise<GroupOutcome>;
  /** Per-user settings; undefined leaves one as it is. False if the user was never in the thread. */
  updateSettings(input: { readonly threadId: number; readonly userId: number; readonly muted: boolean | undefined; readonly label: string | null | undefined }): Promise<boolean>;
}
