import { setTimeout as sleep } from 'node:timers/promises';
import type { Broker, BrokerHandler, Channel, ControlEvent } from '../../services/live/broker.js';
import type { RedisBus } from './connection.js';

/** A subscription this node wants; `acknowledged` settles once Redis confirmed it (or it is no longer wanted). */
interface Wanted {
  readonly acknowledged: Promise<void>;
}

/**
 * The broker between nodes, on Redis pub/sub. A publication goes to
 * `<prefix><channel>` (`chatd:t:12`) carrying the encoded frame text as it
 * is, so a node hands the same bytes to its followers; control events go to
 * `<prefix>control` as JSON. One PUBLISH connection per node and one
 * subscriber connection per node keep one publisher's order per channel
 * (Redis runs a connection's commands in order and writes a subscriber's
 * messages in the order it ran them).
 *
 * What the bus loses stays lost, without an error: a publication made while
 * the command connection is down is dropped and counted, one in flight when
 * it drops may or may not have gone out, and a subscriber reconnecting misses
 * what was published meanwhile. Clients fill gaps from per-thread seqs.
 */
export class RedisBroker implements Broker {
  private handler: BrokerHandler | undefined;
  private readonly wanted = new Map<Channel, Wanted>();
  /** Channels given up while their UNSUBSCRIBE could not go out: sent again when the subscriber is back. */
  private readonly leftOver = new Set<Channel>();
  private readonly controlChannel: string;
  private readonly stopped = new AbortController();
  private droppedCount = 0;
  /** Publications dropped since the last one that went out (0: the bus works). */
  private droppingSince = 0;
  private readonly onReady = (): void => this.unsubscribeLeftOver();
  /** One listener for every channel: node-redis keeps it per channel in a set, so a resubscription adds nothing. */
  private readonly onMessage = (message: string, channel: string): void => this.received(message, channel);

  private constructor(private readonly bus: RedisBus) {
    this.controlChannel = `${bus.prefix}control`;
    bus.subscriber.on('ready', this.onReady);
  }

  /** Resolves once Redis acknowledged the control channel: from then on this node receives every node's control events. */
  static async start(bus: RedisBus): Promise<RedisBroker> {
    const broker = new RedisBroker(bus);
    await broker.subscribeUntilAcknowledged(broker.controlChannel, () => !broker.stopped.signal.aborted);
    return broker;
  }

  /** Publications and control events dropped because Redis was unreachable (for /metrics). */
  get dropped(): number {
    return this.droppedCount;
  }

  run(handler: BrokerHandler): void {
    this.handler = handler;
  }

  publish(channel: Channel, text: string): void {
    this.send(this.bus.prefix + channel, text);
  }

  publishControl(event: ControlEvent): void {
    this.send(this.controlChannel, JSON.stringify(event));
  }

  subscribe(channel: Channel): Promise<void> {
    if (this.stopped.signal.aborted) return Promise.resolve();
    const existing = this.wanted.get(channel);
    if (existing) return existing.acknowledged;
    this.leftOver.delete(channel);
    const entry: { acknowledged: Promise<void> } = { acknowledged: Promise.resolve() };
    // Wanted before the first SUBSCRIBE goes out: the loop checks it.
    this.wanted.set(channel, entry);
    entry.acknowledged = this.subscribeUntilAcknowledged(this.bus.prefix + channel, () => this.wanted.get(channel) === entry);
    return entry.acknowledged;
  }

  unsubscribe(channel: Channel): void {
    if (!this.wanted.delete(channel)) return;
    // node-redis sends it in order behind the SUBSCRIBE, even one still waiting for its answer.
    this.bus.subscriber.unsubscribe(this.bus.prefix + channel).catch(() => {
      // The connection dropped first: node-redis still holds the channel and subscribes it again on reconnection.
      if (!this.wanted.has(channel)) this.leftOver.add(channel);
    });
  }

  subscribed(channel: Channel): boolean {
    return this.wanted.has(channel);
  }

  /** Stops delivering and gives up this node's subscriptions (the bus itself is closed by its owner). */
  async close(): Promise<void> {
    if (this.stopped.signal.aborted) return;
    this.stopped.abort();
    this.handler = undefined;
    this.bus.subscriber.off('ready', this.onReady);
    const channels = [this.controlChannel, ...[...this.wanted.keys(), ...this.leftOver].map((channel) => this.bus.prefix + channel)];
    this.wanted.clear();
    this.leftOver.clear();
    if (this.bus.subscriber.isReady) await this.bus.subscriber.unsubscribe(channels).catch(() => {});
  }

  private send(channel: string, text: string): void {
    if (this.stopped.signal.aborted) return;
    if (!this.bus.commands.isReady) {
      this.drop();
      return;
    }
    this.bus.run((client) => client.publish(channel, text)).then(
      () => this.sent(),
      () => this.drop(),
    );
  }

  private drop(): void {
    this.droppedCount++;
    if (this.droppingSince++ === 0) this.bus.log.warn('Redis is unreachable: dropping publications until it is back (clients fill gaps by seq)');
  }

  private sent(): void {
    if (this.droppingSince === 0) return;
    this.bus.log.info({ dropped: this.droppingSince }, 'publishing to Redis again');
    this.droppingSince = 0;
  }

  private received(message: string, redisChannel: string): void {
    const handler = this.handler;
    if (!handler) return;
    if (redisChannel === this.controlChannel) {
      let event: ControlEvent;
      try {
        event = JSON.parse(message) as ControlEvent;
      } catch {
        this.bus.log.warn({ channel: redisChannel }, 'ignored a control event that is not JSON');
        return;
      }
      handler.control(event);
      return;
    }
    const channel = redisChannel.slice(this.bus.prefix.length) as Channel;
    // A channel given up is still delivered until Redis answers the UNSUBSCRIBE: not to this node's followers.
    if (this.wanted.has(channel)) handler.publication(channel, message);
  }

  /**
   * SUBSCRIBE until Redis acknowledges it. node-redis forgets a SUBSCRIBE
   * whose answer was lost with its connection (it resubscribes only what was
   * acknowledged), so this sends it again once the connection is back; it
   * stops when the channel is no longer wanted or the broker closes.
   */
  private async subscribeUntilAcknowledged(redisChannel: string, stillWanted: () => boolean): Promise<void> {
    const signal = this.stopped.signal;
    while (stillWanted() && !signal.aborted) {
      try {
        await this.bus.subscriber.subscribe(redisChannel, this.onMessage);
        return;
      } catch (error) {
        if (signal.aborted || !stillWanted()) return;
        this.bus.log.debug({ channel: redisChannel, err: (error as Error).message }, 'SUBSCRIBE lost: sending it again once Redis is back');
        try {
          // Ready but refused (a reply error): not in a tight loop.
          if (this.bus.subscriber.isReady) await sleep(100, undefined, { signal });
          else await whenReady(this.bus.subscriber, signal);
        } catch {
          return; // closed while waiting
        }
      }
    }
  }

  private unsubscribeLeftOver(): void {
    if (this.leftOver.size === 0) return;
    const channels = [...this.leftOver];
    this.leftOver.clear();
    for (const channel of channels) {
      this.bus.subscriber.unsubscribe(this.bus.prefix + channel).catch(() => {
        if (!this.wanted.has(channel)) this.leftOver.add(channel);
      });
    }
  }
}

/** Resolves at the client's next 'ready' (events.once would reject at the 'error' of every failed reconnection attempt). */
function whenReady(client: RedisBus['subscriber'], signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const ready = (): void => {
      signal.removeEventListener('abort', aborted);
      resolve();
    };
    const aborted = (): void => {
      client.off('ready', ready);
      reject(signal.reason);
    };
    client.once('ready', ready);
    signal.addEventListener('abort', aborted, { once: true });
  });
}
