import type { Logger } from '../log.js';
import type { AccountEventRow } from '../storage/repositories/account-events.js';
import { toRevocation } from './revocations.js';
import type { Revocation, RevocationListener } from './types.js';

/** Where the watcher reads account events: the database this process shares with the admin CLI. */
export interface AccountEventSource {
  /** Whether another process committed anything since the last call (cheap: asked several times a second). */
  changedElsewhere(): boolean;
  /** The events after `afterId`, oldest first, at most `limit`; ids grow in commit order. */
  after(afterId: number, limit: number): AccountEventRow[];
  latestId(): number;
}

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
 * Issue 18's broker will carry these between nodes; on SQLite this stays the
 * way other processes are heard. (PostgreSQL sequences are not in commit
 * order: a reader by id there needs a look-back.)
 */
export class RevocationWatcher implements RevocationListener {
  private lastId: number;
  /** This process's revocations already handed on, not yet passed by the cursor. */
  private readonly handled = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  /** Events may wait to be read: set before a read, cleared once one succeeded. */
  private unread = false;

  constructor(
    private readonly deps: {
      readonly events: AccountEventSource;
      readonly listener: RevocationListener;
      readonly log: Logger;
      /** How often to ask whether another process committed. */
      readonly intervalMs: number;
    },
  ) {
    // Connections open only after start-up: older revocations concern none of them.
    this.lastId = deps.events.latestId();
  }

  start(): void {
    this.timer ??= setInterval(() => this.poll(), this.deps.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Revocations this process just committed: handed on now. */
  revoked(revocations: readonly Revocation[]): void {
    for (const revocation of revocations) this.handled.add(revocation.id);
    this.deps.listener.revoked(revocations);
    this.unread = true;
    this.catchUp();
  }

  /** Reads new events if another process committed since the last look. */
  poll(): void {
    try {
      if (this.deps.events.changedElsewhere()) this.unread = true;
    } catch (error) {
      this.deps.log.error({ err: error }, 'looking for account events failed; trying again shortly');
    }
    this.catchUp();
  }

  /** Hands on the events after the cursor. A failed read is logged and tried again at the next look: it must not stop the process. */
  private catchUp(): void {
    if (!this.unread) return;
    try {
      this.readAll();
      this.unread = false;
    } catch (error) {
      this.deps.log.error({ err: error }, 'reading account events failed; trying again shortly');
    }
  }

  private readAll(): void {
    for (;;) {
      const rows = this.deps.events.after(this.lastId, PAGE);
      const fresh = rows.filter((row) => !this.handled.has(row.id));
      for (const row of fresh) {
        this.deps.log.info({ user: row.user_id, device: row.device_id, reason: row.reason }, 'revocation made by another process: closing its connections');
      }
      // Should this throw, the page is read again at the next look (handing a revocation on twice changes nothing).
      if (fresh.length > 0) this.deps.listener.revoked(fresh.map(toRevocation));
      for (const row of rows) this.handled.delete(row.id);
      this.lastId = rows.at(-1)?.id ?? this.lastId;
      if (rows.length < PAGE) return;
    }
  }
}
