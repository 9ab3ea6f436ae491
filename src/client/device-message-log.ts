import type { E2eRecords } from './e2e-records.js';
import type { ClientStore } from './store.js';

const DAY = 86_400_000;
/**
 * How old a device message may be (by its sender's clock): the server's
 * default time to live (e2e.device_message_ttl_days, 30) and a day for
 * clocks that disagree. Older ones are refused: their ids are no longer
 * remembered, so a replay could not be told from a first delivery.
 */
export const DEVICE_MESSAGE_MAX_AGE_MS = 31 * DAY;
/** How far ahead of this device's clock a sender's may be. */
const MAX_CLOCK_AHEAD_MS = DAY;

export type Judgement = 'new' | 'replayed' | 'stale';

/**
 * The device messages this device has handled, by the id their sender chose
 * and signed (docs/e2e.md, "Device messages"): the server may deliver one
 * again — a replay, or simply a message after a blocked one, fetched again at
 * every drain — and it is then recognised and not handled twice. Kept in the
 * store for DEVICE_MESSAGE_MAX_AGE_MS, which also bounds it.
 */
export class DeviceMessageLog {
  private seen: Record<string, number> = {};
  /** Recorded since the last flush: written to the store in one go (per drained page), not the whole log per message. */
  private dirty = false;

  constructor(
    private readonly store: ClientStore,
    private readonly now: () => number = Date.now,
  ) {}

  load(seen: E2eRecords['deviceMessagesSeen'] | undefined): void {
    this.seen = { ...seen };
  }

  judge(msgId: string, sentAt: number): Judgement {
    if (this.seen[msgId] !== undefined) return 'replayed';
    const now = this.now();
    if (sentAt < now - DEVICE_MESSAGE_MAX_AGE_MS || sentAt > now + MAX_CLOCK_AHEAD_MS) return 'stale';
    return 'new';
  }

  /** Remembers a handled message; stored at the next `flush()`, which the mailbox calls before it acks. */
  record(msgId: string, sentAt: number): void {
    this.seen[msgId] = sentAt;
    this.dirty = true;
  }

  /** Writes what was recorded since the last flush (and forgets those past the window: they are refused as stale anyway). */
  async flush(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    const oldest = this.now() - DEVICE_MESSAGE_MAX_AGE_MS;
    for (const [msgId, at] of Object.entries(this.seen)) if (at < oldest) delete this.seen[msgId];
    // A copy: the store may keep what it is given, and this one goes on changing.
    await this.store.setE2e('deviceMessagesSeen', { ...this.seen });
  }
}
