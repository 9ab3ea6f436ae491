/**
 * Promises that settle when something is let go, by key: sends held for a
 * contact's changed identity (by user id), or for this device's approval.
 * The outbox waits on them; nothing fails while waiting.
 */
export class Latches<K> {
  private readonly open = new Map<K, () => void>();
  private readonly promises = new Map<K, Promise<void>>();

  /** Settles once `release(key)` (or `releaseUnless`) lets `key` go. */
  wait(key: K): Promise<void> {
    let promise = this.promises.get(key);
    if (!promise) {
      promise = new Promise<void>((resolve) => this.open.set(key, resolve));
      this.promises.set(key, promise);
    }
    return promise;
  }

  release(key: K): void {
    this.open.get(key)?.();
    this.open.delete(key);
    this.promises.delete(key);
  }

  /** Releases every key that is no longer held. */
  releaseUnless(held: (key: K) => boolean): void {
    for (const key of [...this.open.keys()]) if (!held(key)) this.release(key);
  }
}
