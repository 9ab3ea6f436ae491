import { after } from 'node:test';
import { createClient } from 'redis';
import type { RedisCommands } from '../../src/realtime/redis/script.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';

/**
 * What a `*-redis.test.ts` contract runner of a live seam needs: one real
 * redis-server per test file (started at the first case, stopped after the
 * last), a connection per node, and a fresh key prefix per case (cases never
 * see each other's keys, with no FLUSHALL between them).
 */
export class RedisFixture {
  private started: Promise<RedisServer> | undefined;
  private cases = 0;
  /** Clients not disconnected yet: a failed case leaves its own open, and they would keep the process alive. */
  private readonly open = new Set<RedisCommands>();

  constructor() {
    after(async () => {
      await this.disconnect([...this.open]);
      if (this.started) await (await this.started).stop();
    });
  }

  /** A fresh prefix, as a deployment's `bus.prefix`. */
  prefix(): string {
    return `test${++this.cases}:`;
  }

  /** The server (started if need be), for fault tests: stop, restart. */
  async server(): Promise<RedisServer> {
    this.started ??= startRedis();
    return this.started;
  }

  /** A connected command client, as one node's (commands fail fast while disconnected, as in production). */
  async connect(): Promise<RedisCommands> {
    const { url } = await this.server();
    const client: RedisCommands = createClient({ url, disableOfflineQueue: true });
    client.on('error', () => {});
    await client.connect();
    this.open.add(client);
    return client;
  }

  /** Closes clients made by connect. */
  async disconnect(clients: readonly RedisCommands[]): Promise<void> {
    for (const client of clients) this.open.delete(client);
    await Promise.all(clients.map((client) => (client.isOpen ? client.close() : undefined)));
  }
}
