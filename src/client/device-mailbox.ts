import type { DeviceMessageJson } from '../protocol/frames.js';
import { type DeviceMessageKind, openDeviceMessage, sealDeviceMessage } from './device-message.js';
import type { EncPair } from './envelope.js';
import { ClientError } from './errors.js';
import type { Call } from './connection.js';
import type { Sodium } from './sodium.js';

/** Handles one kind of device message; resolves once what it carried is stored (then it is acked). */
export type DeviceMessageHandler = (fromDevice: number, body: unknown) => Promise<void>;

export interface MailboxOptions {
  readonly sodium: Sodium;
  /** This device: its ids, its encryption key pairs and its signing secret. */
  readonly self: () => { user_id: number; device_id: number; pairs: readonly EncPair[]; signSecret: Uint8Array };
  /** The signing key of an approved device of this user; undefined refuses messages from it. */
  readonly approvedSignKey: (deviceId: number) => Uint8Array | undefined;
  /** The encryption key of an approved device of this user, to send to it; undefined refuses. */
  readonly approvedEncKey: (deviceId: number) => Uint8Array | undefined;
  readonly reportError: (error: unknown) => void;
}

/**
 * The device-message queue of this device (the shared spec, section 3):
 * drains it at connect, takes live `device_message` events, hands each
 * payload to the handler of its kind and acks what was handled. A message of
 * a kind nobody handles yet stays queued (a later version may); one that does
 * not open or verify is reported and acked (it can never become good).
 */
export class DeviceMailbox {
  private readonly handlers = new Map<DeviceMessageKind, DeviceMessageHandler>();
  /** One message at a time, in id order: an ack covers every id below it. */
  private chain: Promise<void> = Promise.resolve();
  private handledUpTo = 0;

  constructor(private readonly options: MailboxOptions) {}

  handle(kind: DeviceMessageKind, handler: DeviceMessageHandler): void {
    this.handlers.set(kind, handler);
  }

  /** Every queued message, page by page, then one ack. */
  drain(call: Call): Promise<void> {
    return this.enqueue(async () => {
      let after = 0;
      let ackUpTo = 0;
      let blocked = false;
      for (let more = true; more; ) {
        const page = await call({ type: 'device_messages', after, limit: 100 });
        for (const message of page.messages) {
          after = Math.max(after, message.id);
          const handled = await this.receive(message);
          if (!handled) blocked = true;
          else if (!blocked) ackUpTo = message.id;
        }
        more = page.more && page.messages.length > 0;
      }
      await this.ack(call, ackUpTo);
    });
  }

  /** A live `device_message` event. */
  live(call: Call, message: DeviceMessageJson): void {
    void this.enqueue(async () => {
      if (message.id <= this.handledUpTo) return;
      if (await this.receive(message)) await this.ack(call, message.id);
    }).catch(this.options.reportError);
  }

  /** Seals, signs and sends a device message to an approved device of this user. */
  async send(call: Call, toDevice: number, kind: DeviceMessageKind, body: unknown): Promise<void> {
    const encKey = this.options.approvedEncKey(toDevice);
    if (!encKey) throw new ClientError('not_found', `device ${toDevice} is not an approved device of this account`, false);
    const self = this.options.self();
    const payload = sealDeviceMessage(this.options.sodium, { user_id: self.user_id, device_id: self.device_id, signSecret: self.signSecret }, { device_id: toDevice, encKey }, kind, body);
    await call({ type: 'device_send', device_id: toDevice, payload });
  }

  /** True when the message is done with (handled, or refused for good); false when no handler takes its kind yet, or it failed in a way that may pass. */
  private async receive(message: DeviceMessageJson): Promise<boolean> {
    let opened;
    try {
      opened = openDeviceMessage(this.options.sodium, this.options.self(), message, this.options.approvedSignKey);
    } catch (error) {
      this.options.reportError(new ClientError('bad_reply', `device message ${message.id} from device ${message.from_device} refused: ${(error as Error).message}`, false));
      return true;
    }
    const handler = this.handlers.get(opened.kind);
    if (!handler) return false;
    try {
      await handler(opened.from_device, opened.body);
    } catch (error) {
      this.options.reportError(error);
      // Cut short (the connection dropped, the store failed for now): it stays queued and is handled again at the next drain.
      if (error instanceof ClientError && error.retryable) return false;
    }
    return true;
  }

  private async ack(call: Call, upTo: number): Promise<void> {
    if (upTo <= this.handledUpTo) return;
    await call({ type: 'device_messages_ack', up_to: upTo });
    this.handledUpTo = upTo;
  }

  private enqueue(step: () => Promise<void>): Promise<void> {
    const next = this.chain.then(step);
    this.chain = next.catch(() => undefined);
    return next;
  }
}
