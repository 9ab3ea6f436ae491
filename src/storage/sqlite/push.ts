import type { DuePush, PushClaimant, PushCounter, PushPlatforms, PushQueueStorage, PushRegistration, PushTokensStorage, QueuedPush } from '../ports/push.js';
import type { Store } from '../store.js';
import { toDuePush } from './rows.js';

export class SqlitePushTokensStorage implements PushTokensStorage {
  constructor(private readonly store: Store) {}

  async registerPushToken(deviceId: number, registration: PushRegistration): Promise<void> {
    await this.store.batcher.submit(() => this.store.push.register(deviceId, registration));
  }

  async unregisterPushToken(deviceId: number): Promise<void> {
    await this.store.batcher.submit(() => this.store.push.unregister(deviceId));
  }

  async pushRegistration(deviceId: number): Promise<PushRegistration | undefined> {
    return this.store.push.registration(deviceId);
  }
}

/**
 * The queue on SQLite. One server process works it, so claims never race
 * (the single writer runs each claim alone); they are stored anyway, so that
 * the queue keeps the port's contract as it does on PostgreSQL. The claimant
 * is the same for every process by default: one process at a time serves a
 * SQLite database, and the next one (after a crash) takes its claims back at once.
 */
export class SqlitePushQueueStorage implements PushQueueStorage {
  private readonly claimant: string;

  constructor(
    private readonly store: Store,
    options: PushClaimant = {},
  ) {
    this.claimant = options.claimant ?? 'local';
  }

  expandPending(input: { limit: number; now: number; platforms: PushPlatforms }): Promise<number> {
    const { store } = this;
    return store.batcher.submit(() => {
      const threads = store.push.pendingThreads(input.limit);
      for (const thread of threads) store.push.expand(thread, input.now, input.platforms);
      return threads.length;
    });
  }

  async claimDuePushes(input: { now: number; limit: number; leaseMs: number }): Promise<DuePush[]> {
    const { store } = this;
    const rows = await store.batcher.submit(() => store.push.claimDue(this.claimant, input.now, input.now + input.leaseMs, input.limit));
    return rows.map(toDuePush);
  }

  async nextDueAfter(now: number): Promise<number | null> {
    return this.store.push.nextDueAfter(now);
  }

  async settlePush(push: QueuedPush, counter: PushCounter): Promise<void> {
    const { store } = this;
    await store.batcher.submit(() => {
      store.push.done({ id: push.id, message_id: push.messageId }, this.claimant);
      store.push.count(counter);
    });
  }

  async dropDeadToken(push: QueuedPush, token: string): Promise<void> {
    const { store } = this;
    await store.batcher.submit(() => {
      store.push.done({ id: push.id, message_id: push.messageId }, this.claimant);
      if (store.push.dropToken(push.deviceId, token)) store.push.count('dropped_tokens');
    });
  }

  async retryPush(pushId: number, notBefore: number, error: string): Promise<void> {
    await this.store.batcher.submit(() => this.store.push.retryAt(pushId, notBefore, error));
  }

  async badgeCount(userId: number): Promise<number> {
    return this.store.push.badge(userId);
  }

  async deferPushes(pushIds: readonly number[], notBefore: number): Promise<void> {
    if (pushIds.length === 0) return;
    await this.store.batcher.submit(() => this.store.push.defer(pushIds, notBefore));
  }

  async releaseClaims(): Promise<void> {
    await this.store.batcher.submit(() => this.store.push.releaseClaims(this.claimant));
  }
}
