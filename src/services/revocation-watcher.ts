import type { Clock, Timer } from '../clock.js';
import type { Logger } from '../log.js';
import type { AccountEventsStorage } from '../storage/ports/account-events.js';
import { toRevocation } from './revocations.js';
import type { Revocation, RevocationListener } from './types.js';

/** Events read at a time. */
const PAGE = 500;

/**
 * Hands every revocation to the listener (which closes live connections)
 * exactly once, whichever process made it. This process's own services tell
 * it right after their commit (`revoked`), so those take effect at once; what
 * other processes commit (the admin CLI) it finds by looking every
 * `intervalMs` whether anyone else committed, and only then reading the
 * events after the last one it has seen.
 *
 * The cursor only moves over events read from the database, in id order, so
 * none is skipped: an event of this process is remembered until the read that
 * passes it, and that read follows its commit at once (the events of others
 * committed before it are handed on in the same read).
 *
 * Between server nodes the Broker carries them: the services publish their
 * revocations as a `revoked` control event, and each node hands it to its
 * watcher here. The database poll stays the way processes without a broker
 * (the admin CLI) are heard. (A PostgreSQL sequence alone is not in commit
 * order; migration 0003 makes account event ids so: each writer draws its ids
 * under a lock held to its commit. See PostgresAccountEventsStorage.)
 */
export class RevocationWatcher implements RevocationListener {
  /** Undefined until start() has read where the events end. */
  private lastId: number | undefined;
  /** This process's revocations already handed on, not yet passed by the cursor. */
  private readonly handled = new Set<number>();
  private timer: Timer | undefined;
  /** Events may wait to be read: set before a read, cleared once one succeeded. */
  private unread = false;
  /** A read is under way: the next one waits for it (the cursor moves in one place at a time). */
  private reading: Promise<void> | undefined;

  constructor(
    private readonly deps: {
      readonly events: AccountEventsStorage;
      readonly listener: RevocationListener;
      readonly log: Logger;
      readonly clock: Clock;
      /** How often to ask whether another process committed. */
      readonly intervalMs: number;
    },
  ) {}

  /** Resolves once the cursor is at the newest event: connections open only after start-up, so older revocations concern none of them. */
  async start(): Promise<void> {
    this.lastId ??= await this.deps.events.latestAccountEventId();
    this.timer ??= this.deps.clock.setInterval(() => void this.poll(), this.deps.intervalMs);
  }

  stop(): void {
    if (this.timer) this.deps.clock.clearTimer(this.timer);
    this.timer = undefined;
  }

  /** Revocations this process just committed: handed on now. */
  revoked(revocations: readonly Revocation[]): void {
    for (const revocation of revocations) this.handled.add(revocation.id);
    this.deps.listener.revoked(revocations);
    this.unread = true;
    void this.catchUp();
  }

  /** Reads new events if another process committed since the last look; resolves once they are handed on. */
  async poll(): Promise<void> {
    try {
      if (await this.deps.events.changedElsewhere()) this.unread = true;
    } catch (error) {
      this.deps.log.error({ err: error }, 'looking for account events failed; trying again shortly');
    }
    await this.catchUp();
  }

  /** Hands on the events after the cursor. A failed read is logged and tried again at the next look: it must not stop the process. */
  private async catchUp(): Promise<void> {
    while (this.reading) await this.reading;
    if (!this.unread || this.lastId === undefined) return;
    this.unread = false;
    this.reading = this.readAll(this.lastId).catch((error: unknown) => {
      this.unread = true;
      this.deps.log.error({ err: error }, 'reading account events failed; trying again shortly');
    });
    try {
      await this.reading;
    } finally {
      this.reading = undefined;
    }
  }

  private async readAll(from: number): Promise<void> {
    let lastId = from;
    for (;;) {
      const rows = await this.deps.events.accountEventsAfter(lastId, PAGE);
      const fresh = rows.filter((row) => !this.handled.has(row.id));
      for (const row of fresh) {
        this.deps.log.info({ user: row.userId, device: row.deviceId, reason: row.reason }, 'revocation made by another process: closing its connections');
      }
      // Should this throw, the page is read again at the next look (handing a revocation on twice changes nothing).
      if (fresh.length > 0) this.deps.listener.revoked(fresh.map(toRevocation));
      for (const row of rows) this.handled.delete(row.id);
      lastId = rows.at(-1)?.id ?? lastId;
      this.lastId = lastId;
      if (rows.length < PAGE) return;
    }
  }
}
