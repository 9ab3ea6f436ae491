import { type RedisBus, openRedisBus } from '../../src/realtime/redis/connection.js';
import { RedisBroker } from '../../src/realtime/redis/broker.js';
import { createLogger } from '../../src/log.js';
import { Waiters } from './waiters.js';

/** One chatd node's view of the bus: its connections and its broker. */
export interface BusNode {
  readonly bus: RedisBus;
  readonly broker: RedisBroker;
}

let prefixes = 0;

/** A prefix no other fixture of this process uses, so cases on one redis-server do not hear each other. */
export function freshPrefix(): string {
  return `chatd-test-${process.pid}-${++prefixes}:`;
}

export async function startBusNode(url: string, prefix: string, node: string): Promise<BusNode> {
  const bus = await openRedisBus(url, { prefix, node, log: createLogger('silent') });
  return { bus, broker: await RedisBroker.start(bus) };
}

/**
 * Waits until everything the nodes published so far has been delivered: each
 * node publishes a marker on the same command connection as its broker, behind
 * what it published, and every node waits for every node's marker on its
 * subscriber connection. Redis writes a subscriber's messages in the order it
 * ran the PUBLISHes, so a marker seen means what came before it was delivered.
 */
export class BusFlush {
  private readonly seen: Array<Map<string, number>>;
  private readonly waiters = new Waiters();
  private flushes = 0;

  private constructor(
    private readonly buses: readonly RedisBus[],
    private readonly channel: string,
  ) {
    this.seen = buses.map(() => new Map());
  }

  static async on(buses: readonly RedisBus[], prefix: string): Promise<BusFlush> {
    const flush = new BusFlush(buses, `${prefix}test-flush`);
    await Promise.all(
      buses.map((bus, index) =>
        bus.subscriber.subscribe(flush.channel, (marker: string) => {
          const seen = flush.seen[index] as Map<string, number>;
          seen.set(marker, (seen.get(marker) ?? 0) + 1);
          flush.waiters.notify();
        }),
      ),
    );
    return flush;
  }

  async flush(): Promise<void> {
    const marker = String(++this.flushes);
    const delivered = Promise.all(
      this.seen.map((seen, index) =>
        this.waiters.until(
          () => (seen.get(marker) === this.buses.length ? true : undefined),
          5000,
          () => `node ${index} saw ${seen.get(marker) ?? 0} of ${this.buses.length} flush markers ${marker}`,
        ),
      ),
    );
    await Promise.all(this.buses.map((bus) => bus.commands.publish(this.channel, marker)));
    await delivered;
  }
}
