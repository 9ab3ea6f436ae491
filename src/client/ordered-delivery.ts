import type { MessageJson } from '../protocol/frames.js';
import type { ClientMessage } from './e2e-types.js';

export interface OrderedDeliveryOptions {
  /** Decrypts now when it can (undefined: it cannot without fetching keys). */
  readonly openNow: (message: MessageJson) => ClientMessage | undefined;
  /** Decrypts, fetching what it needs. */
  readonly open: (message: MessageJson) => Promise<ClientMessage>;
  readonly emit: (message: ClientMessage) => void;
  readonly reportError: (error: unknown) => void;
}

/**
 * Hands messages to the app in the order they come. An encrypted one may wait
 * for its sender's keys: then it, and every message after it, waits in turn,
 * so each thread still reaches the app in seq order. The returned promise (for
 * one that waited) settles once the app has it.
 */
export class OrderedDelivery {
  private chain: Promise<void> = Promise.resolve();
  private waiting = 0;

  constructor(private readonly options: OrderedDeliveryOptions) {}

  deliver(message: MessageJson): void | Promise<void> {
    const { options } = this;
    const encrypted = message.kind === 'e2e';
    if (this.waiting === 0) {
      // Most messages, encrypted ones from known devices included, reach the app at once.
      const opened = encrypted ? options.openNow(message) : message;
      if (opened) {
        options.emit(opened);
        return;
      }
    }
    this.waiting++;
    this.chain = this.chain
      .then(async () => options.emit(encrypted ? await options.open(message) : message))
      .catch((error: unknown) => {
        // Not decrypted for want of keys: given as it came, marked.
        options.reportError(error);
        options.emit({ ...message, e2e: { status: 'unknown_sender', fingerprint: undefined } });
      })
      .finally(() => this.waiting--);
    return this.chain;
  }
}
