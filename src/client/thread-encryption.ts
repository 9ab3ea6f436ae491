import type { ThreadJson } from '../protocol/frames.js';
import type { ThreadEncryption } from './e2e-records.js';
import { ClientError } from './errors.js';
import type { ClientStore } from './store.js';

/**
 * Which threads never get plaintext again, decided on the client (review H3):
 * a thread seen requiring encryption, or seen with an encrypted message (sent
 * or received), stays encrypted whatever the server later says; with
 * `always`, every thread is. Kept in the store (`e2eThreads`).
 */
export class ThreadEncryptionPolicy {
  private threads: Record<string, ThreadEncryption> = {};
  /** Downgrades already reported this run (one alarm per thread). */
  private readonly reported = new Set<number>();

  constructor(
    private readonly store: ClientStore,
    private readonly always: boolean,
    private readonly reportError: (error: unknown) => void,
  ) {}

  load(threads: Readonly<Record<string, ThreadEncryption>> | undefined): void {
    this.threads = { ...threads };
  }

  mustEncrypt(threadId: number, thread: ThreadJson | undefined): boolean {
    return this.always || thread?.e2e_required === true || this.threads[String(threadId)] !== undefined;
  }

  /** The server's description of a thread: a requirement is remembered; one that went away is reported, never followed. */
  seen(thread: ThreadJson): void {
    const known = this.threads[String(thread.id)];
    if (thread.e2e_required) {
      if (known !== 'required') this.put(thread.id, 'required');
      return;
    }
    if (known === 'required' && !this.reported.has(thread.id)) {
      this.reported.add(thread.id);
      this.reportError(new ClientError('encryption_downgrade', `the server says thread ${thread.id} no longer requires encryption; it stays encrypted on this device`, false));
    }
  }

  /** An encrypted message went to or came from the thread. */
  encrypted(threadId: number): void {
    if (this.threads[String(threadId)] === undefined) this.put(threadId, 'encrypted');
  }

  private put(threadId: number, why: ThreadEncryption): void {
    this.threads = { ...this.threads, [String(threadId)]: why };
    this.store.setE2e('e2eThreads', this.threads).catch(this.reportError);
  }
}
