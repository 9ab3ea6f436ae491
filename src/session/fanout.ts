import { encodeFrame, messageEventText } from '../protocol/encode.js';
import type { ChannelRegistry } from '../realtime/channels.js';
import type { SessionRegistry } from '../realtime/sessions.js';
import type { AccountKey, DeviceKeys, DeviceMessage, Fanout, Message, PresenceView, ReceiptKind } from '../services/types.js';
import { accountKeyJson, deviceKeysJson, deviceMessageJson, presenceJson } from './wire.js';

/**
 * The services' Fanout on the wire: each event is encoded once, then published
 * through the channel registry, or, for one device, handed to its sessions.
 */
export class WireFanout implements Fanout {
  constructor(
    private readonly channels: ChannelRegistry,
    private readonly sessions: Pick<SessionRegistry, 'sendToDevice'>,
  ) {}

  message(message: Message): void {
    this.channels.publishToThread(message.threadId, messageEventText(message));
  }

  receipt(threadId: number, userId: number, kind: ReceiptKind, seq: number): void {
    this.channels.publishToThread(threadId, encodeFrame({ type: 'receipt', thread_id: threadId, user_id: userId, kind, seq }));
  }

  membership(threadId: number, joined: readonly number[], left: readonly number[]): void {
    if (joined.length > 0) this.channels.follow(joined, threadId);
    if (left.length > 0) this.channels.unfollow(left, threadId);
  }

  typing(threadId: number, userId: number, deviceId: number): void {
    this.channels.publishToThread(threadId, encodeFrame({ type: 'typing', thread_id: threadId, user_id: userId, device_id: deviceId }));
  }

  keysChanged(keys: DeviceKeys, audience: Iterable<number>): void {
    const text = encodeFrame({ type: 'keys_changed', ...deviceKeysJson(keys) });
    for (const userId of audience) this.channels.publishToUser(userId, text);
  }

  accountChanged(account: AccountKey, audience: Iterable<number>): void {
    const text = encodeFrame({ type: 'account_changed', ...accountKeyJson(account) });
    for (const userId of audience) this.channels.publishToUser(userId, text);
  }

  deviceMessage(deviceId: number, message: DeviceMessage): void {
    this.sessions.sendToDevice(deviceId, encodeFrame({ type: 'device_message', message: deviceMessageJson(message) }));
  }

  presence(presence: PresenceView, audience: Iterable<number>): void {
    const text = encodeFrame({ type: 'presence_update', ...presenceJson(presence) });
    for (const userId of audience) this.channels.publishToUser(userId, text);
  }
}
