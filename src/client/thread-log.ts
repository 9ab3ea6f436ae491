import type { MessageJson } from '../protocol/frames.js';

/**
 * One thread's receive order on the client: the rule that turns at-least-once,
 * possibly gapped arrivals into "each message once, in seq order".
 *
 * `cursor` is the highest seq the app has been given with nothing missing
 * below it (seqs the device may not see count as present). Messages above
 * `cursor + 1` wait in `held` until the gap is filled: by the missing message
 * arriving, or by an authoritative page (a `sync` or `history after` reply,
 * which holds every seq the device may see in its range).
 */
export class ThreadLog {
  private readonly held = new Map<number, MessageJson>();

  constructor(private position: number) {}

  get cursor(): number {
    return this.position;
  }

  /** True while a message is held above a gap. */
  get hasGap(): boolean {
    return this.held.size > 0;
  }

  /** The lowest held seq, when there is a gap. */
  get firstHeld(): number | undefined {
    let lowest: number | undefined;
    for (const seq of this.held.keys()) if (lowest === undefined || seq < lowest) lowest = seq;
    return lowest;
  }

  /**
   * A message from the live stream or the inbox. Returns what the app may now
   * be given, in order: nothing for a duplicate or a message above a gap.
   */
  offer(message: MessageJson): MessageJson[] {
    if (message.seq <= this.position || this.held.has(message.seq)) return [];
    if (message.seq > this.position + 1) {
      this.held.set(message.seq, message);
      return [];
    }
    this.position = message.seq;
    return [message, ...this.releaseHeld()];
  }

  /**
   * An authoritative page: `messages` (ascending) are every seq this device may
   * see in (`after`, last message's seq]. Seqs missing from it are invisible
   * to the device and are skipped.
   */
  applyPage(after: number, messages: readonly MessageJson[]): MessageJson[] {
    const released: MessageJson[] = [];
    for (const message of messages) {
      if (message.seq <= this.position) continue;
      if (message.seq <= after) continue; // outside the page's range: not authoritative for what lies below it
      this.position = message.seq;
      this.held.delete(message.seq);
      released.push(message);
    }
    for (const seq of this.held.keys()) if (seq <= this.position) this.held.delete(seq);
    return [...released, ...this.releaseHeld()];
  }

  /**
   * Gives up on a gap the server says is empty (an authoritative page that
   * brought nothing): the lowest held message is released and the seqs below it skipped.
   */
  skipGap(): MessageJson[] {
    const lowest = this.firstHeld;
    if (lowest === undefined) return [];
    this.position = lowest - 1;
    return this.releaseHeld();
  }

  private releaseHeld(): MessageJson[] {
    const released: MessageJson[] = [];
    for (let next = this.held.get(this.position + 1); next; next = this.held.get(this.position + 1)) {
      this.held.delete(next.seq);
      this.position = next.seq;
      released.push(next);
    }
    return released;
  }
}
