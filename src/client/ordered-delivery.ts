import type { MessageJson } from '../protocol/frames.js';
import type { ClientMessage } from './e2e-types.js';
import { ClientError } from './errors.js';

export interface OrderedDeliveryOptions {
  /** Decrypts now when it can (undefined: it cannot without fetching keys). */
  readonly openNow: (message: MessageJson) => ClientMessage | undefined;
  /** Decrypts, fetching what it needs. */
  readonly open: (message: MessageJson) => Promise<ClientMessage>;
  readonly emit: (message: ClientMessage) => void;
  readonly reportError: (error: unknown) => void;
}

/**
 * Whether a message could not be opened for a reason that passes (the
 * connection dropped while keys were settling, a key fetch that timed out):
 * then it is not given out at all, but held back for the next connection.
 */
export function isTransient(error: unknown): error is ClientError {
  return error instanceof ClientError && error.retryable;
}

/**
 * Hands messages to the app in the order they come. An encrypted one may wait
 * for its sender's keys: then it, and every message after it, waits in turn,
 * so each thread still reaches the app in seq order. The returned promise (for
 * one that waited) settles once the app has it.
 *
 * A message that cannot be opened for a transient reason is not given out
 * (never a lasting `unknown_sender` for a dropped connection):
 * its promise rejects with that error, and so does every message after it
 * until `resume()` (the next connection), so that nothing overtakes it. The
 * receiver then keeps its cursor where the app is, and gets it again.
 */
export class OrderedDelivery {
  private chain: Promise<void> = Promise.resolve();
  private waiting = 0;
  private stalled: ClientError | undefined;

  constructor(private readonly options: OrderedDeliveryOptions) {}

  deliver(message: MessageJson): void | Promise<void> {
    const { options } = this;
    const encrypted = message.kind === 'e2e';
    if (this.waiting === 0 && !this.stalled) {
      // Most messages, encrypted ones from known devices included, reach the app at once.
      const opened = encrypted ? options.openNow(message) : message;
      if (opened) {
        options.emit(opened);
        return;
      }
    }
    this.waiting++;
    const turn = this.chain
      .then(async () => {
        if (this.stalled) throw this.stalled;
        options.emit(encrypted ? await options.open(message) : message);
      })
      .catch((error: unknown) => {
        if (isTransient(error)) {
          this.stalled ??= error;
          throw error;
        }
        // Not decrypted for want of keys: given as it came, marked.
        options.reportError(error);
        options.emit({ ...message, e2e: { status: 'unknown_sender', fingerprint: undefined } });
      })
      .finally(() => this.waiting--);
    this.chain = turn.catch(() => undefined);
    return turn;
  }

  /** A new connection: what was held back comes again (from the cursors), so delivery goes on. */
  resume(): void {
    this.stalled = undefined;
  }
}
