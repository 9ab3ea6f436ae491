import { encodeFrame, messageEventText } from '../protocol/encode.js';
import { type Broker, deviceChannel, threadChannel, userChannel } from '../services/live/broker.js';
import type { AccountKey, DeviceKeys, DeviceMessage, Fanout, HiddenMessage, Message, PresenceView, ReceiptKind } from '../services/types.js';
import { type CoalescedReceipt, ReceiptBatch, type TurnScheduler } from './receipt-batch.js';
import { accountKeyJson, deviceKeysJson, deviceMessageJson, hiddenJson, presenceJson } from './wire.js';

/**
 * The services' Fanout on the wire: each event is encoded once, then published
 * through the broker to whichever nodes hold the connections that follow its
 * channel. Membership changes are control events: every node moves its own
 * connections' subscriptions.
 */
export class WireFanout implements Fanout {
  private readonly receipts: ReceiptBatch;

  /** `schedule`: when a turn's coalesced receipts go out (the end of the event-loop turn; tests pass their own). */
  constructor(
    private readonly broker: Pick<Broker, 'publish' | 'publishControl'>,
    schedule?: TurnScheduler,
  ) {
    this.receipts = new ReceiptBatch((receipt) => this.publishReceipt(receipt), schedule);
  }

  message(message: Message): void {
    this.broker.publish(threadChannel(message.threadId), messageEventText(message));
  }

  /**
   * Protocol 4: to the audience's user channels (every live device of each, on
   * any node, following the thread or not), never to the whole thread;
   * coalesced per event-loop turn (ReceiptBatch).
   */
  receipt(threadId: number, userId: number, kind: ReceiptKind, seq: number, audience: readonly number[]): void {
    this.receipts.add(threadId, userId, kind, seq, audience);
  }

  membership(threadId: number, joined: readonly number[], left: readonly number[], joinedBy?: Message): void {
    if (joined.length === 0 && left.length === 0) return;
    const frames = joined.length > 0 && joinedBy ? [messageEventText(joinedBy)] : [];
    this.broker.publishControl({ kind: 'members_changed', threadId, joined, left, frames });
  }

  typing(threadId: number, userId: number, deviceId: number): void {
    this.broker.publish(threadChannel(threadId), encodeFrame({ type: 'typing', thread_id: threadId, user_id: userId, device_id: deviceId }));
  }

  keysChanged(keys: DeviceKeys, audience: Iterable<number>): void {
    this.toUsers(audience, encodeFrame({ type: 'keys_changed', ...deviceKeysJson(keys) }));
  }

  accountChanged(account: AccountKey, audience: Iterable<number>): void {
    this.toUsers(audience, encodeFrame({ type: 'account_changed', ...accountKeyJson(account) }));
  }

  deviceMessage(deviceId: number, message: DeviceMessage): void {
    this.broker.publish(deviceChannel(deviceId), encodeFrame({ type: 'device_message', message: deviceMessageJson(message) }));
  }

  hidden(userId: number, items: readonly HiddenMessage[]): void {
    if (items.length === 0) return;
    this.broker.publish(userChannel(userId), encodeFrame({ type: 'hidden', items: items.map(hiddenJson) }));
  }

  presence(presence: PresenceView, audience: Iterable<number>): void {
    this.toUsers(audience, encodeFrame({ type: 'presence_update', ...presenceJson(presence) }));
  }

  private publishReceipt({ threadId, userId, kind, seq, audience }: CoalescedReceipt): void {
    this.toUsers(audience, encodeFrame({ type: 'receipt', thread_id: threadId, user_id: userId, kind, seq }));
  }

  private toUsers(audience: Iterable<number>, text: string): void {
    for (const userId of audience) this.broker.publish(userChannel(userId), text);
  }
}
