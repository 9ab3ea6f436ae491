import { type Broker, type BrokerHandler, type Channel, threadChannel, userChannel, deviceChannel } from '../services/live/broker.js';
import type { DeviceLinks, Link } from '../services/live/device-links.js';

/**
 * The channel registry: the topics this node's connections follow, and the
 * node's broker subscriptions that feed them. A connection follows its user's
 * channel and its threads' channels once its inbox is through (join); the node
 * subscribes a channel at the broker while any of its connections follows it
 * (a count per channel) and hands each publication to the transport's
 * publish, which copies the bytes to every follower (in C++ with uWS): a group
 * message is encoded once, not once per member.
 *
 * Device channels (`d:<id>`, device messages) are not transport topics: a
 * topic per connected device would cost every idle connection memory for a
 * rare event. The node subscribes them while the device has a joined
 * connection here and hands each publication to the device's links.
 */

/** What the registry needs of a live connection. */
export interface Follower {
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
}

/** A device's authenticated connection, as the live seams hold it. */
export interface LiveLink extends Link {
  readonly follower: Follower;
  /** An encoded event for this device alone (dropped before its inbox is through). */
  deliver(text: string): void;
  /** Closes the connection (a revocation). */
  close(reason: 'device_revoked', message: string): void;
}

/** Sends one text to every connection following a topic (the transport's publish). */
export type Publish = (topic: string, text: string) => void;

export class ChannelRegistry implements Pick<BrokerHandler, 'publication'> {
  /** The channels each joined connection follows (a device's own channel included). */
  private readonly following = new Map<LiveLink, Set<Channel>>();
  /** Joined connections of this node per channel: the broker subscription lives while this is above 0. */
  private readonly counts = new Map<Channel, number>();

  constructor(
    private readonly broker: Broker,
    private readonly links: Pick<DeviceLinks<LiveLink>, 'ofDevice' | 'ofUser'>,
    private readonly publishText: Publish,
  ) {}

  /** An authenticated connection, its inbox through, starts following its user's channel, its device's and its threads'. */
  join(link: LiveLink, threadIds: Iterable<number>): void {
    if (this.following.has(link)) return;
    this.following.set(link, new Set());
    this.retain(link, deviceChannel(link.deviceId), false);
    this.retain(link, userChannel(link.userId), true);
    for (const id of threadIds) this.retain(link, threadChannel(id), true);
  }

  /** The connection has closed (the transport drops its topics itself): the node's counts go down. */
  leave(link: LiveLink): void {
    const channels = this.following.get(link);
    if (!channels) return;
    this.following.delete(link);
    for (const channel of channels) this.release(channel);
  }

  /** Every joined connection here of these users starts following the thread. */
  follow(userIds: Iterable<number>, threadId: number): void {
    const channel = threadChannel(threadId);
    for (const userId of userIds) for (const link of this.links.ofUser(userId)) if (this.following.has(link)) this.retain(link, channel, true);
  }

  /** Every joined connection here of these users stops following the thread. */
  unfollow(userIds: Iterable<number>, threadId: number): void {
    const channel = threadChannel(threadId);
    for (const userId of userIds) {
      for (const link of this.links.ofUser(userId)) {
        const channels = this.following.get(link);
        if (!channels?.delete(channel)) continue;
        link.follower.unsubscribe(channel);
        this.release(channel);
      }
    }
  }

  /** From the broker: to the transport's followers of the topic, or to a device's joined links. */
  publication(channel: Channel, text: string): void {
    if (!channel.startsWith('d:')) {
      this.publishText(channel, text);
      return;
    }
    for (const link of this.links.ofDevice(Number(channel.slice(2)))) if (this.following.has(link)) link.deliver(text);
  }

  private retain(link: LiveLink, channel: Channel, topic: boolean): void {
    const channels = this.following.get(link);
    if (!channels || channels.has(channel)) return;
    channels.add(channel);
    if (topic) link.follower.subscribe(channel);
    const count = (this.counts.get(channel) ?? 0) + 1;
    this.counts.set(channel, count);
    if (count === 1) this.broker.subscribe(channel);
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
