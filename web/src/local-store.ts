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

  /**
   * The SDK's search index of the encrypted messages this browser decrypted,
   * beside the document (it holds their text, as the document holds the
   * keys that open them): a reload still finds them. When localStorage is
   * full the index is dropped rather than the write failing: it is a cache
   * the SDK rebuilds from what it decrypts next.
   */
  saveLocalIndex(serialised: string | undefined): Promise<void> {
    try {
      if (serialised === undefined) localStorage.removeItem(this.indexKey);
      else localStorage.setItem(this.indexKey, serialised);
    } catch {
      localStorage.removeItem(this.indexKey);
    }
    return Promise.resolve();
  }

  loadLocalIndex(): Promise<string | undefined> {
    return Promise.resolve(localStorage.getItem(this.indexKey) ?? undefined);
  }

  private get indexKey(): string {
    return `${this.key}.search`;
  }

  /** Forgets everything (logout). */
  clear(): void {
    localStorage.removeItem(this.key);
    localStorage.removeItem(this.indexKey);
  }
}
