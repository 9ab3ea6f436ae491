import type { DeviceMessageJson } from '../protocol/frames.js';
import { type DeviceMessageKind, UntrustedSender, openDeviceMessage, sealDeviceMessage } from './device-message.js';
import type { DeviceMessageLog } from './device-message-log.js';
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
  /** The signing key of a device of this user this device takes messages of `kind` from; undefined: not (yet). */
  readonly approvedSignKey: (deviceId: number, kind: DeviceMessageKind) => Uint8Array | undefined;
  /** The encryption key of an approved device of this user, to send to it; undefined refuses. */
  readonly approvedEncKey: (deviceId: number) => Uint8Array | undefined;
  /**
   * Whether a device whose message does not verify now may yet become trusted: a current pending device of this
   * user, after a fresh look at this user's devices (a revoked or unknown one never will). Asked at most once per
   * device per drain.
   */
  readonly mayBecomeTrusted: (call: Call, deviceId: number) => Promise<boolean>;
  /** The messages handled already (by their signed id): a replay is not handled again. */
  readonly log: DeviceMessageLog;
  readonly reportError: (error: unknown) => void;
}

/**
 * The device-message queue of this device (the shared spec, section 3):
 * drains it after connect, takes live `device_message` events, hands each
 * payload to the handler of its kind and acks what was handled. A message of
 * a kind nobody handles yet, one whose handling was cut short, and one from a
 * pending device of this user (not yet approved, for at most BLOCKED_MAX_AGE_MS)
 * stay queued ("blocked"); one that does not open or verify, is from a device
 * revoked or unknown, or is older than the log remembers, is reported and
 * acked (it can never become good).
 *
 * An ack deletes every id up to it on the server, so nothing is acked past a
 * blocked message: live messages after one are handled but not acked, and
 * the next drain brings them again — recognised by the log, not handled twice.
 */
/** How long a message from a pending device stays queued, waiting for its approval, before it is refused (and acked). */
export const BLOCKED_MAX_AGE_MS = 7 * 86_400_000;

export class DeviceMailbox {
  private readonly handlers = new Map<DeviceMessageKind, DeviceMessageHandler>();
  /** One message at a time, in id order: an ack covers every id below it. */
  private chain: Promise<void> = Promise.resolve();
  private handledUpTo = 0;
  /** The lowest id left queued since the last drain began; nothing at or past it is acked until a drain. */
  private blockedFrom: number | undefined;
  /** Per drain: the answers of mayBecomeTrusted (one fresh look per device). */
  private pendingSenders = new Map<number, Promise<boolean>>();

  constructor(private readonly options: MailboxOptions) {}

  handle(kind: DeviceMessageKind, handler: DeviceMessageHandler): void {
    this.handlers.set(kind, handler);
  }

  /** Every queued message, page by page, each page acked (up to the first blocked message). */
  drain(call: Call): Promise<void> {
    return this.enqueue(async () => {
      this.blockedFrom = undefined;
      this.pendingSenders = new Map();
      let after = 0;
      for (let more = true; more; ) {
        const page = await call({ type: 'device_messages', after, limit: 100 });
        let ackUpTo = 0;
        for (const message of page.messages) {
          after = Math.max(after, message.id);
          const handled = await this.receive(call, message);
          if (!handled) this.blockedFrom ??= message.id;
          else if (this.blockedFrom === undefined) ackUpTo = message.id;
        }
        // Per page: a long queue is not fetched again from its start when the connection drops halfway. What was handled
        // is stored first (one write per page): an ack deletes it on the server.
        await this.options.log.flush();
        await this.ack(call, ackUpTo);
        more = page.more && page.messages.length > 0;
      }
    });
  }

  /** Drains again when something is blocked (a handler was attached, a sender became trusted). */
  retryBlocked(call: Call): Promise<void> {
    return this.blockedFrom === undefined ? Promise.resolve() : this.drain(call);
  }

  /** A live `device_message` event. */
  live(call: Call, message: DeviceMessageJson): void {
    void this.enqueue(async () => {
      if (message.id <= this.handledUpTo) return;
      const handled = await this.receive(call, message);
      await this.options.log.flush();
      if (!handled) {
        this.blockedFrom = Math.min(this.blockedFrom ?? message.id, message.id);
        return;
      }
      // Acking it would delete the blocked one below it too.
      if (this.blockedFrom === undefined) await this.ack(call, message.id);
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

  /** True when the message is done with (handled, a replay, or refused for good); false when it stays queued. */
  private async receive(call: Call, message: DeviceMessageJson): Promise<boolean> {
    const { log } = this.options;
    let opened;
    try {
      opened = openDeviceMessage(this.options.sodium, this.options.self(), message, this.options.approvedSignKey);
    } catch (error) {
      // A grant from a device whose approval this device has not heard of yet is not lost: it waits, queued; but only
      // while that device is pending (a revoked or unknown one never becomes trusted) and for at most a week: a message
      // that waits blocks the acks of every one after it.
      const waits = error instanceof UntrustedSender && (await this.mayWait(call, message));
      this.options.reportError(new ClientError('bad_reply', `device message ${message.id} from device ${message.from_device} ${waits ? 'waits' : 'refused'}: ${(error as Error).message}`, false));
      return !waits;
    }
    const judged = log.judge(opened.msg_id, opened.sent_at);
    if (judged === 'replayed') return true;
    if (judged === 'stale') {
      this.options.reportError(new ClientError('bad_reply', `device message ${message.id} from device ${message.from_device} refused: made at ${new Date(opened.sent_at).toISOString()}, outside the time this device remembers messages for (a replay cannot be told)`, false));
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
    log.record(opened.msg_id, opened.sent_at);
    return true;
  }

  private async mayWait(call: Call, message: DeviceMessageJson): Promise<boolean> {
    if (Date.now() - message.created_at > BLOCKED_MAX_AGE_MS) return false;
    let answer = this.pendingSenders.get(message.from_device);
    if (!answer) {
      answer = this.options.mayBecomeTrusted(call, message.from_device);
      this.pendingSenders.set(message.from_device, answer);
      // A failed look (the connection dropped) is asked again, not remembered.
      answer.catch(() => this.pendingSenders.delete(message.from_device));
    }
    return answer;
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
