import { encodeFrame, messageEventText } from '../protocol/encode.js';
import { type Broker, deviceChannel, threadChannel, userChannel } from '../services/live/broker.js';
import type { AccountKey, DeviceKeys, DeviceMessage, Fanout, HiddenMessage, Message, PresenceView, ReceiptKind } from '../services/types.js';
import { accountKeyJson, deviceKeysJson, deviceMessageJson, hiddenJson, presenceJson } from './wire.js';

/**
 * The services' Fanout on the wire: each event is encoded once, then published
 * through the broker to whichever nodes hold the connections that follow its
 * channel. Membership changes are control events: every node moves its own
 * connections' subscriptions.
 */
export class WireFanout implements Fanout {
  constructor(private readonly broker: Pick<Broker, 'publish' | 'publishControl'>) {}

  message(message: Message): void {
    this.broker.publish(threadChannel(message.threadId), messageEventText(message));
  }

  receipt(threadId: number, userId: number, kind: ReceiptKind, seq: number): void {
    this.broker.publish(threadChannel(threadId), encodeFrame({ type: 'receipt', thread_id: threadId, user_id: userId, kind, seq }));
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

  private toUsers(audience: Iterable<number>, text: string): void {
    for (const userId of audience) this.broker.publish(userChannel(userId), text);
  }
}
