import type { Clock } from '../clock.js';
import type { AuditEvent, AuditFields, AuditLog } from './audit.js';

/** The events an attacker can cause at will, without credentials: these are throttled. */
const REFUSALS: ReadonlySet<AuditEvent> = new Set(['token_refused', 'rate_limited', 'login_failed']);

/**
 * Bounds what refusals can write, so that a flood of bad tokens or limited
 * requests cannot fill the disk (or make journald drop real lines): at most
 * `perMinute` lines a minute for each event, address and limit; the next
 * line after a quiet spell says how many were left out (`suppressed`).
 * Everything else passes straight through. Bounded in memory: past `maxKeys`
 * keys, the oldest window is forgotten.
 */
export class ThrottledAuditLog implements AuditLog {
  private readonly windows = new Map<string, { start: number; written: number; suppressed: number }>();

  constructor(
    private readonly inner: AuditLog,
    private readonly clock: Clock,
    private readonly perMinute = 10,
    private readonly maxKeys = 10_000,
  ) {}

  record(event: AuditEvent, fields: AuditFields): void {
    if (!REFUSALS.has(event)) {
      this.inner.record(event, fields);
      return;
    }
    const key = `${event}\n${fields.address ?? ''}\n${fields.limit ?? ''}`;
    const now = this.clock.now();
    let window = this.windows.get(key);
    if (!window || now - window.start >= 60_000) {
      const suppressed = window?.suppressed ?? 0;
      this.windows.delete(key);
      if (this.windows.size >= this.maxKeys) this.windows.delete(this.windows.keys().next().value as string);
      window = { start: now, written: 0, suppressed: 0 };
      this.windows.set(key, window);
      if (suppressed > 0) fields = { ...fields, suppressed };
    }
    if (window.written >= this.perMinute) {
      window.suppressed++;
      return;
    }
    window.written++;
    this.inner.record(event, fields);
  }
}
