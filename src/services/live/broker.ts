import type { Revocation } from '../types.js';

/**
 * Channels carry encoded frames: `t:<thread id>` (a thread's messages,
 * receipts, typing), `u:<user id>` (events for all of a user's devices) and
 * `d:<device id>` (events for one device: device messages).
 */
export type Channel = `t:${number}` | `u:${number}` | `d:${number}`;

export function threadChannel(threadId: number): Channel {
  return `t:${threadId}`;
}

export function userChannel(userId: number): Channel {
  return `u:${userId}`;
}

export function deviceChannel(deviceId: number): Channel {
  return `d:${deviceId}`;
}

/** What is said to every node, whoever holds the connections it concerns. Plain data: it crosses processes. */
export type ControlEvent =
  /** Tokens stopped working (a device revoked, a user disabled or deleted): every node closes the sessions concerned, checking what holds now. */
  | { readonly kind: 'revoked'; readonly revocations: readonly Revocation[] }
  /**
   * A thread's members changed: live connections of `joined` start following
   * it, those of `left` stop. `frames`: what the connections of `joined` that
   * follow get at once (the message that made them members: published on the
   * thread before they followed it).
   */
  | {
      readonly kind: 'members_changed';
      readonly threadId: number;
      readonly joined: readonly number[];
      readonly left: readonly number[];
      readonly frames?: readonly string[];
    }
  /** A new connection took the device's liveness from link `key` (on another node): that node forgets the link held it. */
  | { readonly kind: 'device_live'; readonly deviceId: number; readonly key: string };

/** What a node does with what the broker brings it. Called synchronously by an in-memory broker; from the network reader by a networked one. */
export interface BrokerHandler {
  /** A publication on a channel this node subscribes to. */
  publication(channel: Channel, text: string): void;
  /** A control event, from any node (this one included). */
  control(event: ControlEvent): void;
}

/**
 * Publish/subscribe between whoever holds the connections (centrifuge's
 * Broker). Subscriptions are per node, not per connection: the node
 * subscribes a channel while any of its connections follows it and copies
 * each publication to them itself.
 *
 * Contract, for every implementation:
 * - Per channel, publications from one publisher reach a subscriber in publish
 *   order; nothing is promised across channels or publishers.
 * - It may lose publications and control events (a network broker restarting,
 *   a node's link cut): clients fill gaps from per-thread seqs and the database
 *   stays the truth, so correctness never depends on the broker.
 * - A publication reaches only nodes subscribed to its channel at the time;
 *   control events reach every running node.
 */
export interface Broker {
  /** Starts delivering to `handler` (once per node, before any subscribe). */
  run(handler: BrokerHandler): void;
  /**
   * Sends `text` (an encoded frame: encoded once, for every recipient) to the
   * nodes subscribed to `channel`. Does not wait for delivery; an in-memory
   * broker delivers before it returns, so a publish made right after an ack,
   * in the same gathered turn, goes out behind it.
   */
  publish(channel: Channel, text: string): void;
  /**
   * This node receives the channel's publications (idempotent). Resolves once
   * it does: a networked broker's subscription is a round trip, and what is
   * published before it resolves may or may not arrive. Never rejects: a
   * broker retries and logs its own failures (the in-memory one resolves at once).
   */
  subscribe(channel: Channel): Promise<void>;
  /** This node stops receiving the channel (idempotent). */
  unsubscribe(channel: Channel): void;
  /** Sends a control event to every node, this one included. */
  publishControl(event: ControlEvent): void;
  /** Whether this node subscribes to `channel` (for the registry's bookkeeping and the tests). */
  subscribed(channel: Channel): boolean;
  /** Stops delivering; for shutdown. */
  close(): Promise<void>;
}
