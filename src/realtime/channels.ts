/**
 * The channel registry: which users have live connections here, and the topics
 * they follow. A message is published once to its thread's topic and the socket
 * library copies the bytes to every follower (in C++ with uWS), so a group
 * message is encoded once, not once per member.
 *
 * Topics: `t:<thread id>` (messages, receipts, typing of a thread) and
 * `u:<user id>` (events for all of one user's devices, e.g. presence). Events
 * for one device (device messages) go through the SessionRegistry instead: a
 * topic per connected device would cost every idle connection memory for a
 * rare event.
 */

/** What the registry needs of a live connection. */
export interface Follower {
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
}

/** Sends one text to every connection following a topic (the transport's publish). */
export type Publish = (topic: string, text: string) => void;

export function threadTopic(threadId: number): string {
  return `t:${threadId}`;
}

export function userTopic(userId: number): string {
  return `u:${userId}`;
}

export class ChannelRegistry {
  private readonly byUser = new Map<number, Set<Follower>>();

  constructor(private readonly publishText: Publish) {}

  /** An authenticated connection starts following its user's topic and its threads. */
  join(follower: Follower, userId: number, threadIds: Iterable<number>): void {
    let set = this.byUser.get(userId);
    if (!set) this.byUser.set(userId, (set = new Set()));
    set.add(follower);
    follower.subscribe(userTopic(userId));
    for (const id of threadIds) follower.subscribe(threadTopic(id));
  }

  /** The connection has closed (the transport drops its subscriptions itself). */
  leave(follower: Follower, userId: number): void {
    const set = this.byUser.get(userId);
    set?.delete(follower);
    if (set?.size === 0) this.byUser.delete(userId);
  }

  /** Every live connection of these users starts following the thread. */
  follow(userIds: Iterable<number>, threadId: number): void {
    for (const userId of userIds) for (const follower of this.byUser.get(userId) ?? []) follower.subscribe(threadTopic(threadId));
  }

  unfollow(userIds: Iterable<number>, threadId: number): void {
    for (const userId of userIds) for (const follower of this.byUser.get(userId) ?? []) follower.unsubscribe(threadTopic(threadId));
  }

  publishToThread(threadId: number, text: string): void {
    this.publishText(threadTopic(threadId), text);
  }

  publishToUser(userId: number, text: string): void {
    if (this.byUser.has(userId)) this.publishText(userTopic(userId), text);
  }
}
