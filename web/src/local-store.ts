import { DocumentStore, type E2eRecords, type StoredState, documentToState, parseStoreDocument } from '../../src/client/browser.js';

/**
 * The client store in localStorage, one document per account and server:
 * unsent messages survive a reload or a closed tab and go out at the next
 * connection. localStorage writes are synchronous, so each write is durable
 * when its promise resolves.
 */
export class LocalStorageStore extends DocumentStore {
  constructor(private readonly key: string) {
    super();
  }

  /** Rejects with `store_corrupt` when the stored document is malformed (it is left as it is). */
  load(): Promise<StoredState> {
    try {
      const text = localStorage.getItem(this.key);
      if (text) this.document = parseStoreDocument(text, `localStorage ${this.key}`);
    } catch (error) {
      return Promise.reject(error);
    }
    return Promise.resolve(documentToState(structuredClone(this.document)));
  }

  protected persist(): Promise<void> {
    localStorage.setItem(this.key, JSON.stringify(this.document));
    return Promise.resolve();
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  /** Contacts' account keys as the SDK pinned them (verified, a change waiting for acceptance): read by the screens, written by the SDK only. */
  pinnedAccounts(): E2eRecords['accounts'] {
    return this.document.accounts ?? {};
  }

  /** Threads the SDK keeps encrypted for good. */
  encryptedThreads(): E2eRecords['e2eThreads'] {
    return this.document.e2eThreads ?? {};
  }

  /** Forgets everything (logout). */
  clear(): void {
    localStorage.removeItem(this.key);
  }
}
