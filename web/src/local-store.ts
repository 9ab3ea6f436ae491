import { DocumentStore, type StoredState, documentToState, parseStoreDocument } from '../../src/client/browser.js';

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

  /** Forgets everything (logout). */
  clear(): void {
    localStorage.removeItem(this.key);
  }
}
