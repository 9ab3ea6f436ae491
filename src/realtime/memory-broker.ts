import type { Broker, BrokerHandler, Channel, ControlEvent } from '../services/live/broker.js';

/**
 * The broker of a single node: delivery is a synchronous call into this
 * node's handler, so a publication goes out in the same turn (and the same
 * gathered write) as whatever the publisher sent just before it. Never loses anything.
 */
export class MemoryBroker implements Broker {
  private handler: BrokerHandler | undefined;
  private readonly channels = new Set<Channel>();

  run(handler: BrokerHandler): void {
    this.handler = handler;
  }

  publish(channel: Channel, text: string): void {
    if (this.channels.has(channel)) this.handler?.publication(channel, text);
  }

  async subscribe(channel: Channel): Promise<void> {
    this.channels.add(channel);
  }

  unsubscribe(channel: Channel): void {
    this.channels.delete(channel);
  }

  publishControl(event: ControlEvent): void {
    this.handler?.control(event);
  }

  subscribed(channel: Channel): boolean {
    return this.channels.has(channel);
  }

  async close(): Promise<void> {
    this.handler = undefined;
    this.channels.clear();
  }
}
