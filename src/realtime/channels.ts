import { type Broker, type BrokerHandler, type Channel, threadChannel, userChannel, deviceChannel } from '../services/live/broker.js';
import type { DeviceLinks, Link } from '../services/live/device-links.js';

/**
 * The channel registry: the topics this node's connections follow, and the
 * node's broker subscriptions that feed them. A connection follows its
 * device's, its user's and its threads' channels once its inbox is through
 * (join); the node subscribes a channel at the broker while any of its
 * connections follows it (a count per channel) and hands each thread
 * publication to the transport's publish, which copies the bytes to every
 * follower (in C++ with uWS): a group message is encoded once, not once per member.
 *
 * Device and user channels (`d:<id>`: device messages; `u:<id>`: a user's
 * events, presence, receipts) are not transport topics: a uWS topic and its
 * subscription cost every idle connection about 0.5 KB of native memory, for
 * a channel with a handful of followers at most (a user's devices). The node
 * subscribes them at the broker while the device or user has a joined
 * connection here and hands each publication to those links, whose sends
 * keep the order of what the transport's topics already queued for them.
 */

/** What the registry needs of a live connection. */
export interface Follower {
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
}

/** A device's authenticated connection, as the live seams hold it. */
export interface LiveLink extends Link {
  readonly follower: Follower;
  /** An encoded event of its device's or user's channel (dropped before its inbox is through). */
  deliver(text: string): void;
  /** Closes the connection (a revocation). */
  close(reason: 'device_revoked', message: string): void;
}

/** The thread channels a joined connection follows: none, one, or a set of two or more. */
type Threads = Channel | Set<Channel> | undefined;

/** Sends one text to every connection following a topic (the transport's publish). */
export type Publish = (topic: string, text: string) => void;

export class ChannelRegistry implements Pick<BrokerHandler, 'publication'> {
  /**
   * Each joined connection, with the thread channels it follows: none, the one
   * channel itself, or a set from the second on (most idle connections follow
   * none or one thread, and a set costs each of them about 200 bytes). Its
   * user's and device's channels go without saying.
   */
  private readonly following = new Map<LiveLink, Threads>();
  /** Joined connections of this node per channel: the broker subscription lives while this is above 0. */
  private readonly counts = new Map<Channel, number>();
  /**
   * Membership changes that came for an attached connection not joined yet:
   * per thread channel, whether it should follow it (the latest change wins,
   * which is applying them in order). Join's thread list is a snapshot taken
   * earlier (the inbox's last page); a change committed after it would
   * otherwise be lost for the life of the connection (a removed member
   * following the thread it left). Made only when such a change comes: an
   * idle connection pays nothing.
   */
  private readonly early = new Map<LiveLink, Map<Channel, boolean>>();

  constructor(
    private readonly broker: Broker,
    private readonly links: Pick<DeviceLinks<LiveLink>, 'ofDevice' | 'ofUser'>,
    private readonly publishText: Publish,
  ) {}

  /** An authenticated connection, its inbox through, starts following its user's channel, its device's and its threads'. */
  join(link: LiveLink, threadIds: Iterable<number>): void {
    if (this.following.has(link)) return;
    this.following.set(link, undefined);
    this.retain(deviceChannel(link.deviceId));
    this.retain(userChannel(link.userId));
    for (const id of threadIds) this.followThread(link, threadChannel(id));
    const early = this.early.get(link);
    if (!early) return;
    this.early.delete(link);
    for (const [channel, follows] of early) {
      if (follows) this.followThread(link, channel);
      else this.unfollowThread(link, channel);
    }
  }

  /** The connection has closed (the transport drops its topics itself): the node's counts go down. */
  leave(link: LiveLink): void {
    this.early.delete(link);
    if (!this.following.has(link)) return;
    const threads = this.following.get(link);
    this.following.delete(link);
    this.release(deviceChannel(link.deviceId));
    this.release(userChannel(link.userId));
    if (typeof threads === 'string') this.release(threads);
    else for (const channel of threads ?? []) this.release(channel);
  }

  /** Every connection here of these users starts following the thread (one not joined yet: once it joins). */
  follow(userIds: Iterable<number>, threadId: number, frames: readonly string[] = []): void {
    this.membershipChanged(userIds, threadChannel(threadId), true, frames);
  }

  /** Every connection here of these users stops following the thread (one not joined yet: is kept from it at join). */
  unfollow(userIds: Iterable<number>, threadId: number): void {
    this.membershipChanged(userIds, threadChannel(threadId), false);
  }

  /** From the broker: a thread's to the transport's followers of the topic, a device's or a user's to their joined links. */
  publication(channel: Channel, text: string): void {
    if (channel.startsWith('t:')) {
      this.publishText(channel, text);
      return;
    }
    const id = Number(channel.slice(2));
    for (const link of channel.startsWith('d:') ? this.links.ofDevice(id) : this.links.ofUser(id)) if (this.following.has(link)) link.deliver(text);
  }

  private membershipChanged(userIds: Iterable<number>, channel: Channel, follows: boolean, frames: readonly string[] = []): void {
    for (const userId of userIds) {
      for (const link of this.links.ofUser(userId)) {
        if (!this.following.has(link)) {
          // Attached, its inbox not through: join's snapshot may predate this change (and its inbox has the frames).
          let early = this.early.get(link);
          if (!early) this.early.set(link, (early = new Map()));
          early.set(channel, follows);
        } else if (follows) {
          this.followThread(link, channel);
          for (const frame of frames) link.deliver(frame);
        } else this.unfollowThread(link, channel);
      }
    }
  }

  private unfollowThread(link: LiveLink, channel: Channel): void {
    const threads = this.following.get(link);
    if (threads === channel) this.following.set(link, undefined);
    else if (typeof threads === 'string' || !threads?.delete(channel)) return;
    else if (threads.size <= 1) {
      // Back to the shape a connection with one thread or none has (the set is for two or more).
      const [remaining] = threads;
      this.following.set(link, remaining);
    }
    link.follower.unsubscribe(channel);
    this.release(channel);
  }

  private followThread(link: LiveLink, channel: Channel): void {
    const threads = this.following.get(link);
    if (threads === undefined) this.following.set(link, channel);
    else if (typeof threads === 'string') {
      if (threads === channel) return;
      this.following.set(link, new Set([threads, channel]));
    } else {
      if (threads.has(channel)) return;
      threads.add(channel);
    }
    link.follower.subscribe(channel);
    this.retain(channel);
  }

  private retain(channel: Channel): void {
    const count = (this.counts.get(channel) ?? 0) + 1;
    this.counts.set(channel, count);
    // Not awaited: the in-memory broker is subscribed before this returns; a networked one delivers from when it
    // resolves, and what a joining connection misses meanwhile its client fills in by seq (see InboxDrain).
    if (count === 1) void this.broker.subscribe(channel);
  }

  private release(channel: Channel): void {
    const count = (this.counts.get(channel) ?? 1) - 1;
    if (count > 0) {
      this.counts.set(channel, count);
      return;
    }
    this.counts.delete(channel);
    this.broker.unsubscribe(channel);
  }
}
