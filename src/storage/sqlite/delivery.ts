import type { DeliveryStorage, InboxPage, OfflineOutcome, OfflineRules } from '../ports/delivery.js';
import { anyPushPlatform } from '../ports/push.js';
import type { Store } from '../store.js';
import { toStoredMessage } from './append.js';

/** DeliveryStorage on SQLite: each write one synchronous function run in the group commit. */
export class SqliteDeliveryStorage implements DeliveryStorage {
  constructor(private readonly store: Pick<Store, 'inbox' | 'push' | 'devices' | 'threads' | 'batcher' | 'read'>) {}

  goLive(deviceId: number): Promise<void> {
    return this.store.batcher.submit(() => this.store.inbox.goLive(deviceId));
  }

  async isLive(deviceId: number): Promise<boolean> {
    return this.store.inbox.isLive(deviceId);
  }

  goOffline(deviceId: number, rules: OfflineRules): Promise<OfflineOutcome> {
    return this.store.batcher.submit(() => this.writeOffline(deviceId, rules));
  }

  recoverLiveDevices(rules: OfflineRules): Promise<number> {
    return this.store.batcher.submit(() => {
      const devices = this.store.inbox.liveDevices();
      for (const deviceId of devices) this.writeOffline(deviceId, rules);
      return devices.length;
    });
  }

  expireInboxes(cutoff: number): Promise<number[]> {
    return this.store.batcher.submit(() => {
      const devices = this.store.inbox.devicesWithRowsBefore(cutoff);
      for (const deviceId of devices) this.store.inbox.overflow(deviceId);
      return devices;
    });
  }

  async inboxPage(deviceId: number, afterId: number, limit: number): Promise<InboxPage> {
    const { inbox, devices, threads } = this.store;
    return this.store.read(() => {
      const messages = inbox.pending(deviceId, afterId, limit).map(toStoredMessage);
      const userId = messages.length === 0 ? devices.findById(deviceId)?.user_id : undefined;
      return { messages, overflowed: inbox.overflowed(deviceId), followedThreadIds: userId === undefined ? undefined : threads.activeThreadIds(userId) };
    });
  }

  async inboxOverflowed(deviceId: number): Promise<boolean> {
    return this.store.inbox.overflowed(deviceId);
  }

  /** Inside the caller's transaction. */
  private writeOffline(deviceId: number, rules: OfflineRules): OfflineOutcome {
    const { inbox, push } = this.store;
    const { overflowed, liveAfter } = inbox.goOffline(deviceId, rules.readDiffusionAbove, rules.maxMessages);
    const pushesQueued = liveAfter !== null && anyPushPlatform(rules.push);
    if (pushesQueued) push.enqueueUnacked(deviceId, liveAfter, rules.now, rules.push);
    if (overflowed) inbox.overflow(deviceId);
    return { wasLive: liveAfter !== null, overflowed, pushesQueued };
  }
}
