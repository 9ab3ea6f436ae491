import type { Connection, ConnectionListener, SendStatus } from '../../src/transport/types.js';

/**
 * A Connection with no socket: it records what the session sends, the topics
 * it follows and how it was closed, and reports the send buffer the test
 * sets (`buffered`, plus `bytesPerSend` for each frame sent, as a reader that
 * does not read would). `close` calls the listener's onClose, as a transport does.
 */
export class FakeConnection implements Connection {
  readonly remoteAddress = '192.0.2.1';
  readonly forwardedFor: string | undefined = undefined;
  /** Every text sent, in order. */
  readonly sent: string[] = [];
  readonly topics = new Set<string>();
  /** How many gather() calls ran, and the frames each sent. */
  readonly gathered: string[][] = [];
  closedWith: { code: number; reason: string } | undefined;
  /** Bytes queued and not yet written; the test moves it. */
  buffered = 0;
  /** Added to `buffered` by each send: a reader that reads nothing. */
  bytesPerSend = 0;
  /** Called with each text sent (a test's log of what happened in which order). */
  onSend: ((text: string) => void) | undefined;
  private listener: ConnectionListener | undefined;
  private gathering: string[] | undefined;

  /** The listener the transport would call (the Session). */
  attach(listener: ConnectionListener): void {
    this.listener = listener;
  }

  send(text: string): SendStatus {
    if (this.closedWith) return 'dropped';
    this.sent.push(text);
    this.onSend?.(text);
    this.gathering?.push(text);
    this.buffered += this.bytesPerSend;
    return 'sent';
  }

  bufferedAmount(): number {
    return this.buffered;
  }

  subscribe(topic: string): void {
    if (!this.closedWith) this.topics.add(topic);
  }

  unsubscribe(topic: string): void {
    this.topics.delete(topic);
  }

  gather(work: () => void): void {
    const frames: string[] = [];
    this.gathering = frames;
    try {
      work();
    } finally {
      this.gathering = undefined;
      this.gathered.push(frames);
    }
  }

  close(code: number, reason: string): void {
    if (this.closedWith) return;
    this.closedWith = { code, reason };
    this.topics.clear();
    this.listener?.onClose(code, reason);
  }

  /** The client sends a text frame. */
  receive(text: string): void {
    this.listener?.onMessage(text);
  }

  /** The send buffer emptied (the transport's drain event). */
  drained(): void {
    this.buffered = 0;
    this.listener?.onDrain();
  }

  /** The frames sent, parsed. */
  frames(): Array<{ type: string } & Record<string, unknown>> {
    return this.sent.map((text) => JSON.parse(text) as { type: string } & Record<string, unknown>);
  }

  /** The types of the frames sent, in order. */
  types(): string[] {
    return this.frames().map((frame) => frame.type);
  }
}
