import type { SignedOut } from './token.js';

/** A message from another device of the same user, waiting for this one. */
export interface StoredDeviceMessage {
  /** Grows: the receiver pages and acks by id. */
  readonly id: number;
  readonly fromDevice: number;
  /** The payload's bytes (the wire carries them in base64). */
  readonly payload: Buffer;
  readonly createdAt: number;
}

export type SendDeviceMessageOutcome =
  | SignedOut
  /** `no_target`: not another current device of the sender's user; `not_approved`: the sender holds no certificate. */
  | { readonly kind: 'refused'; readonly reason: 'no_target' | 'not_approved' }
  /** The target's queue from this sender would pass a bound: what waits there now. */
  | { readonly kind: 'refused'; readonly reason: 'queue_bytes' | 'queue_messages'; readonly queued: { readonly bytes: number; readonly count: number } }
  | { readonly kind: 'stored'; readonly id: number };

/** DeviceMessageService's storage: a queue per (receiving device, sending device), bounded by the caller's limits inside the unit. */
export interface DeviceMessagesStorage {
  /**
   * Stores a message if the sender is signed in and approved, the target is
   * another current device of the same user, and the sender's queue there stays
   * within `limits` with it. Ids grow: the receiver pages and acks by id.
   */
  sendDeviceMessage(input: SendDeviceMessageInput): Promise<SendDeviceMessageOutcome>;
  /** The device's messages after id `after`, oldest first, at most `limit`. */
  deviceMessages(toDevice: number, after: number, limit: number): Promise<StoredDeviceMessage[]>;
  /** Deletes the device's messages with ids up to `upTo`; resolves with how many. */
  ackDeviceMessages(toDevice: number, upTo: number): Promise<number>;
  /** Deletes every message stored before `before` (ms); resolves with how many. */
  expireDeviceMessages(before: number): Promise<number>;
}

/** A device message to store, with the sender's queue bounds (`[e2e]` config) the unit checks. */
export interface SendDeviceMessageInput {
  readonly userId: number;
  readonly fromDevice: number;
  readonly toDevice: number;
  readonly payload: Buffer;
  readonly now: number;
  readonly limits: { readonly maxQueueBytes: number; readonly maxQueueMessages: number };
}
