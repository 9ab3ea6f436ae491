import type { MessageJson } from '../protocol/frames.js';
import type { E2eRecords } from './e2e-records.js';
import type { ClientStore } from './store.js';

/**
 * The seam a history module (sharing message keys between one's own devices,
 * `shareHistory`) plugs into: `E2eSession.attachHistory(module)` returns the
 * host below and routes `history` device messages to `module.receive`.
 *
 * Sending side: page through history, `messageKey(m)` for each message this
 * device can open, batch `[thread_id, seq, key]` into parts and
 * `sendDeviceMessage(device, body)` each (recording progress with `setGrants`).
 * Receiving side: `receive` gets each part (signature and sender already
 * checked: an approved device of this user), stores the keys with
 * `addHistoryKeys`; from then on those messages open `ok` with `via: 'history'`.
 */
export interface HistoryModule {
  /** A `history` device message from another approved device of this user; resolves once its keys are stored (then it is acked). */
  receive(fromDevice: number, body: unknown): Promise<void>;
}

export interface HistoryHost {
  /** Resolves once this connection's keys are settled: `messageKey` answers for every message only then (undefined before). */
  ready(): Promise<void>;
  /** K (base64) of a message this device opens `ok` (sealed to it, or itself from history); undefined otherwise. */
  messageKey(message: MessageJson): string | undefined;
  /** Keeps shared message keys (`[thread_id, seq, key]`): those messages then open with status `ok`, `via: 'history'`. */
  addHistoryKeys(keys: ReadonlyArray<readonly [number, number, string]>): Promise<void>;
  /** Seals, signs and sends a `history` device message to an approved device of this user. */
  sendDeviceMessage(toDevice: number, body: unknown): Promise<void>;
  /** Whether a device is another approved (account-certified, not revoked) device of this user: history goes only there. */
  isApprovedOwnDevice(deviceId: number): boolean;
  /** The stored grant records (`grants`): outgoing progress, incoming parts. */
  grants(): E2eRecords['grants'];
  setGrants(grants: E2eRecords['grants']): Promise<void>;
}

/** The message keys other own devices shared, by thread and seq (the store's `historyKeys`). */
export class HistoryKeys {
  private keys: Record<string, Record<string, string>> = {};

  constructor(
    private readonly store: ClientStore,
    private readonly reportError: (error: unknown) => void,
  ) {}

  load(keys: E2eRecords['historyKeys'] | undefined): void {
    this.keys = Object.fromEntries(Object.entries(keys ?? {}).map(([thread, seqs]) => [thread, { ...seqs }]));
  }

  get(threadId: number, seq: number): string | undefined {
    return this.keys[String(threadId)]?.[String(seq)];
  }

  add(entries: ReadonlyArray<readonly [number, number, string]>): Promise<void> {
    for (const [threadId, seq, key] of entries) {
      if (!Number.isSafeInteger(threadId) || !Number.isSafeInteger(seq) || typeof key !== 'string') continue;
      (this.keys[String(threadId)] ??= {})[String(seq)] = key;
    }
    return this.store.setE2e('historyKeys', this.keys).catch((error: unknown) => {
      this.reportError(error);
      throw error;
    });
  }
}
