import type { Clock } from '../clock.js';
import { ChatError } from '../errors.js';
import type { DeviceMessagesStorage, StoredDeviceMessage, SendDeviceMessageOutcome } from '../storage/ports/device-messages.js';
import { refuseSignedOut } from './revocations.js';
import type { DeviceMessage, Fanout, Principal } from './types.js';

export interface DeviceMessageSettings {
  /** e2e.max_device_message_bytes: largest payload, decoded. */
  readonly maxMessageBytes: number;
  /** e2e.max_device_queue_bytes: most payload bytes from one device waiting for another. */
  readonly maxQueueBytes: number;
  /** e2e.max_device_queue_messages: most messages from one device waiting for another. */
  readonly maxQueueMessages: number;
  /** e2e.device_message_ttl_days, in ms: unacknowledged messages older than this are dropped. */
  readonly ttlMs: number;
}

export interface DeviceMessageDeps {
  readonly storage: DeviceMessagesStorage;
  readonly clock: Clock;
  readonly fanout: Pick<Fanout, 'deviceMessage'>;
  readonly settings: DeviceMessageSettings;
}

/** Most messages one device_messages reply holds. */
export const DEVICE_MESSAGES_PAGE_MAX = 100;
/** A reply stops adding messages once it holds this many payload bytes (it always holds one, if any wait). */
const PAGE_BYTES = 1024 * 1024;

/**
 * Device messages: opaque payloads from one device of a user to another of
 * the same user (how the account key and message keys reach a new device,
 * docs/e2e.md). The server stores them until the receiver acknowledges them
 * or they expire, and reads none of them.
 */
export class DeviceMessageService {
  constructor(private readonly deps: DeviceMessageDeps) {}

  /**
   * Stores the payload for `toDevice`, then hands it to that device's live
   * connections. Only an approved device sends (grants and history come from
   * approved devices; a token alone, even a stolen password's new device,
   * cannot fill another device's queue), and each sender has a queue of its
   * own at the target, so one sender cannot crowd out another.
   */
  async send(principal: Principal, toDevice: number, payloadBase64: string): Promise<DeviceMessage> {
    const { storage, clock, settings } = this.deps;
    const payload = Buffer.from(payloadBase64, 'base64');
    // Canonical only: what the receiver gets back (re-encoded from the stored bytes) is what was sent.
    if (payload.length === 0 || payload.toString('base64') !== payloadBase64) {
      throw new ChatError('invalid_field', 'payload must be standard, padded base64 of at least one byte', { field: 'payload' });
    }
    if (payload.length > settings.maxMessageBytes) {
      throw new ChatError('payload_too_large', `payload is ${payload.length} bytes; at most ${settings.maxMessageBytes} (e2e.max_device_message_bytes)`, { field: 'payload' });
    }
    const now = clock.now();
    const outcome = await storage.sendDeviceMessage({
      userId: principal.user.id,
      fromDevice: principal.deviceId,
      toDevice,
      payload,
      now,
      limits: { maxQueueBytes: settings.maxQueueBytes, maxQueueMessages: settings.maxQueueMessages },
    });
    if (outcome.kind === 'signed_out') refuseSignedOut(outcome.state);
    if (outcome.kind === 'refused') throw refusal(outcome, toDevice);
    const { id } = outcome;
    const message: DeviceMessage = { id, fromDevice: principal.deviceId, payload: payloadBase64, createdAt: now };
    this.deps.fanout.deviceMessage(toDevice, message);
    return message;
  }

  /** The calling device's messages after id `after`: at most `limit` (capped at 100) and about 1 MiB of payload. */
  async page(principal: Principal, after: number, limit: number): Promise<{ messages: DeviceMessage[]; more: boolean }> {
    const wanted = Math.min(limit, DEVICE_MESSAGES_PAGE_MAX);
    const rows = await this.deps.storage.deviceMessages(principal.deviceId, after, wanted + 1);
    const messages: DeviceMessage[] = [];
    let bytes = 0;
    for (const row of rows.slice(0, wanted)) {
      if (messages.length > 0 && bytes + row.payload.length > PAGE_BYTES) break;
      bytes += row.payload.length;
      messages.push(toDeviceMessage(row));
    }
    return { messages, more: rows.length > messages.length };
  }

  /** Deletes the calling device's messages with ids up to `upTo`. */
  async ack(principal: Principal, upTo: number): Promise<void> {
    await this.deps.storage.ackDeviceMessages(principal.deviceId, upTo);
  }

  /** Drops messages older than e2e.device_message_ttl_days; returns how many. */
  expire(): Promise<number> {
    const { storage, clock, settings } = this.deps;
    return storage.expireDeviceMessages(clock.now() - settings.ttlMs);
  }
}

/** Today's error for each refusal of the unit. */
function refusal(outcome: Extract<SendDeviceMessageOutcome, { kind: 'refused' }>, toDevice: number): ChatError {
  switch (outcome.reason) {
    case 'no_target':
      return new ChatError('not_found', `device ${toDevice} is not another current device of yours`, { field: 'device_id' });
    case 'not_approved':
      return new ChatError('forbidden', 'only a device approved by your account key sends device messages: approve this device from another one first');
    // No retry_after: the receiver drains its queue when it connects, and a pause would hold every other
    // request on the sender's connection. The sender keeps the message and tries again later.
    case 'queue_bytes':
      return new ChatError('rate_limited', `device ${toDevice} has ${outcome.queued.bytes} bytes from you waiting (e2e.max_device_queue_bytes): it must fetch them first`, {
        details: { limit: 'e2e.max_device_queue_bytes' },
      });
    case 'queue_messages':
      return new ChatError('rate_limited', `device ${toDevice} has ${outcome.queued.count} messages from you waiting (e2e.max_device_queue_messages): it must fetch them first`, {
        details: { limit: 'e2e.max_device_queue_messages' },
      });
  }
}

function toDeviceMessage(stored: StoredDeviceMessage): DeviceMessage {
  return { id: stored.id, fromDevice: stored.fromDevice, payload: stored.payload.toString('base64'), createdAt: stored.createdAt };
}
