/**
 * Waiting on something a test records, by event: `until` looks now and again
 * each time `notify` says the record grew. Every wait has a deadline, so a
 * regression fails fast with what was awaited instead of hanging the suite.
 */
export class Waiters {
  private readonly waiting = new Set<() => void>();

  /** Resolves with what `find` finds, now or after a later `notify`; rejects after `ms` with `timedOut()`'s message. */
  until<T>(find: () => T | undefined, ms: number, timedOut: () => string): Promise<T> {
    const found = find();
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(check);
        reject(new Error(timedOut()));
      }, ms);
      const check = (): void => {
        const value = find();
        if (value === undefined) return;
        clearTimeout(timer);
        this.waiting.delete(check);
        resolve(value);
      };
      this.waiting.add(check);
    });
  }

  /** Something was recorded: every pending `until` looks again. */
  notify(): void {
    for (const check of [...this.waiting]) check();
  }
}
