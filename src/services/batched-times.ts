/**
 * Timestamps written through the group commit rather than in a commit of their
 * own (a reconnect storm would otherwise wait on one fsync per device or user).
 * Until that commit ends, a frame or request read in the meantime (a busy or
 * descheduled process reads I/O before its next commit) is answered from here,
 * so it sees the time already announced, not the row's older one. A failed
 * write loses a timestamp, nothing a client was promised.
 */
export class BatchedTimes {
  private readonly unstored = new Map<number, number>();

  /**
   * Sets `id`'s time to `at`: `write` is the storage's unit of work that
   * stores it (group-committed), settling after its commit. Resolves once it
   * settled (never rejects): what other nodes read from then on is `at`.
   */
  set(id: number, at: number, write: () => Promise<unknown>): Promise<void> {
    this.unstored.set(id, at);
    const settled = (): void => {
      if (this.unstored.get(id) === at) this.unstored.delete(id);
    };
    return write().then(settled, settled);
  }

  /** The time set for `id` that is not committed yet, else the stored one. */
  get(id: number, stored: number | null): number | null {
    return this.unstored.get(id) ?? stored;
  }
}
