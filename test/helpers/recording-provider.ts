import type { Notification, PushOutcome, PushProvider } from '../../src/push/types.js';

/** A push provider (FCM) that accepts everything and lets the test wait for its n-th notification. */
export class RecordingProvider implements PushProvider {
  readonly platform = 'fcm' as const;
  readonly sent: Notification[] = [];
  private waiters: Array<{ count: number; done: () => void }> = [];

  async send(_target: unknown, notification: Notification): Promise<PushOutcome> {
    this.sent.push(notification);
    for (const waiter of this.waiters.filter((w) => w.count <= this.sent.length)) waiter.done();
    return { kind: 'sent', id: undefined };
  }

  async close(): Promise<void> {}

  /** Resolves once `count` notifications have been sent. */
  called(count: number): Promise<void> {
    if (this.sent.length >= count) return Promise.resolve();
    return new Promise((done) => this.waiters.push({ count, done }));
  }
}
