import type { MessageJson } from '../protocol/frames.js';
import type { ClientMessage } from './e2e-types.js';
import { ClientError, isFrameRateRefusal } from './errors.js';

export interface OrderedDeliveryOptions {
  /** Decrypts now when it can (undefined: it cannot without fetching keys). */
  readonly openNow: (message: MessageJson) => ClientMessage | undefined;
  /** Decrypts, fetching what it needs. */
  readonly open: (message: MessageJson) => Promise<ClientMessage>;
  readonly emit: (message: ClientMessage) => void;
  readonly reportError: (error: unknown) => void;
}

/**
 * Whether a message could not be opened for a reason of this connection's own
 * (it dropped while keys were settling, a key fetch that timed out or that the
 * frame rate limit kept refusing, unhandled): then it is not given out at all,
 * but held back for the next connection. A server's answer (internal,
 * unavailable, a limit on what the request asks…) is not: a new connection
 * would most likely get the same answer, and holding for it would redeliver forever.
 */
export function isTransient(error: unknown): error is ClientError {
  return (error instanceof ClientError && (error.code === 'disconnected' || error.code === 'timeout')) || isFrameRateRefusal(error);
}

/** One thread's turn order. */
interface Lane {
  chain: Promise<void>;
  waiting: number;
  stalled: ClientError | undefined;
}

/**
 * Hands messages to the app in the order they come. An encrypted one may wait
 * for its sender's keys: then it, and every later message of its thread, waits
 * in turn, so each thread still reaches the app in seq order; other threads go on.
 * The returned promise (for one that waited) settles once the app has it.
 *
 * A message that cannot be opened for a transient reason is not given out
 * (never a lasting `unknown_sender` for a dropped connection):
 * its promise rejects with that error, and so does every later message of its
 * thread until `resume()` (the next connection), so that nothing overtakes it.
 * The receiver then keeps its cursor where the app is, and gets it again.
 */
export class OrderedDelivery {
  private lanes = new Map<number, Lane>();

  constructor(private readonly options: OrderedDeliveryOptions) {}

  deliver(message: MessageJson): void | Promise<void> {
    const { options } = this;
    const encrypted = message.kind === 'e2e';
    const lane = this.lanes.get(message.thread_id);
    if (!lane || (lane.waiting === 0 && !lane.stalled)) {
      // Most messages, encrypted ones from known devices included, reach the app at once.
      const opened = encrypted ? options.openNow(message) : message;
      if (opened) {
        options.emit(opened);
        return;
      }
    }
    const current = lane ?? { chain: Promise.resolve(), waiting: 0, stalled: undefined };
    this.lanes.set(message.thread_id, current);
    current.waiting++;
    const turn = current.chain
      .then(async () => {
        if (current.stalled) throw current.stalled;
        options.emit(encrypted ? await options.open(message) : message);
      })
      .catch((error: unknown) => {
        if (isTransient(error)) {
          current.stalled ??= error;
          throw error;
        }
        // Not decrypted for want of keys: given as it came, marked.
        options.reportError(error);
        options.emit({ ...message, e2e: { status: 'unknown_sender', fingerprint: undefined } });
      })
      .finally(() => {
        current.waiting--;
        // An idle lane is forgotten (a stalled one stays until resume()).
        if (current.waiting === 0 && !current.stalled && this.lanes.get(message.thread_id) === current) this.lanes.delete(message.thread_id);
      });
    current.chain = turn.catch(() => undefined);
    return turn;
  }

  /** A new connection: what was held back comes again (from the cursors), so delivery goes on. */
  resume(): void {
    for (const [threadId, lane] of this.lanes) {
      lane.stalled = undefined;
      if (lane.waiting === 0) this.lanes.delete(threadId);
    }
  }
}
