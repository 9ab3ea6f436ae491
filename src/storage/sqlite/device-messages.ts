import type { DeviceMessagesStorage, SendDeviceMessageInput, SendDeviceMessageOutcome, StoredDeviceMessage } from '../ports/device-messages.js';
import type { Store } from '../store.js';
import { signedOut } from './signed-out.js';

export class SqliteDeviceMessagesStorage implements DeviceMessagesStorage {
  constructor(private readonly store: Store) {}

  sendDeviceMessage(input: SendDeviceMessageInput): Promise<SendDeviceMessageOutcome> {
    const { store } = this;
    return store.batcher.submit((): SendDeviceMessageOutcome => {
      // All in one unit: a revocation of either device that committed first wins.
      const out = signedOut(store, input.fromDevice);
      if (out) return out;
      const target = store.devices.findById(input.toDevice);
      if (!target || target.user_id !== input.userId || target.revoked_at !== null || input.toDevice === input.fromDevice) return { kind: 'refused', reason: 'no_target' };
      if (store.keys.ofDevice(input.fromDevice)?.account_signature == null) return { kind: 'refused', reason: 'not_approved' };
      const queued = store.deviceMessages.queued(input.toDevice, input.fromDevice);
      if (queued.bytes + input.payload.length > input.limits.maxQueueBytes) return { kind: 'refused', reason: 'queue_bytes', queued };
      if (queued.count + 1 > input.limits.maxQueueMessages) return { kind: 'refused', reason: 'queue_messages', queued };
      return { kind: 'stored', id: store.deviceMessages.insert(input.toDevice, input.fromDevice, input.payload, input.now) };
    });
  }

  async deviceMessages(toDevice: number, after: number, limit: number): Promise<StoredDeviceMessage[]> {
    return this.store.deviceMessages.page(toDevice, after, limit).map((row) => ({ id: row.id, fromDevice: row.from_device, payload: row.payload, createdAt: row.created_at }));
  }

  ackDeviceMessages(toDevice: number, upTo: number): Promise<number> {
    return this.store.batcher.submit(() => this.store.deviceMessages.ack(toDevice, upTo));
  }

  expireDeviceMessages(before: number): Promise<number> {
    return this.store.batcher.submit(() => this.store.deviceMessages.expire(before));
  }
}
