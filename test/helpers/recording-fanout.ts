import type { Fanout, Message, PushQueueListener, ReceiptKind } from '../../src/services/types.js';

/** A Fanout (and push wake-up) that records what it was told, in order, as short strings and the messages. */
export class RecordingFanout implements Fanout, PushQueueListener {
  readonly log: string[] = [];
  readonly messages: Message[] = [];

  message(message: Message): void {
    this.messages.push(message);
    this.log.push(`message ${message.threadId}:${message.seq}`);
  }
  receipt(threadId: number, userId: number, kind: ReceiptKind, seq: number, audience: readonly number[]): void {
    this.log.push(`${kind} ${threadId} user ${userId} seq ${seq} to [${audience.join(',')}]`);
  }
  membership(threadId: number, joined: readonly number[], left: readonly number[], joinedBy?: Message): void {
    this.log.push(`membership ${threadId} +[${joined.join(',')}] -[${left.join(',')}]${joinedBy ? ` with ${joinedBy.threadId}:${joinedBy.seq}` : ''}`);
  }
  typing(threadId: number, userId: number, deviceId: number): void {
    this.log.push(`typing ${threadId} user ${userId} device ${deviceId}`);
  }
  presence(): void {
    this.log.push('presence');
  }
  keysChanged(): void {
    this.log.push('keys');
  }
  accountChanged(): void {
    this.log.push('account');
  }
  deviceMessage(deviceId: number): void {
    this.log.push(`device message ${deviceId}`);
  }
  hidden(userId: number, items: readonly { readonly messageId: number }[]): void {
    this.log.push(`hidden user ${userId} [${items.map((item) => item.messageId).join(',')}]`);
  }
  pushQueued(): void {
    this.log.push('push');
  }
}
