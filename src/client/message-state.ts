import type { ChangeJson, HiddenJson } from '../protocol/frames.js';
import type { ClientMessage } from './e2e-types.js';
import { LocalSearch } from './local-search.js';
import { MessageCache, isChange } from './message-changes.js';
import type { ClientStore } from './store.js';

/** How long the local index may wait after a change before it is saved to the store, ms. */
const SAVE_AFTER_MS = 2000;

export interface MessageStateOptions {
  readonly store: ClientStore;
  /** Messages kept to apply changes to (0: none). */
  readonly cacheSize: number;
  /** `store`: the local index is kept in the store when it can keep one; `memory`: for this run; `off`: no local index. */
  readonly localSearch: 'store' | 'memory' | 'off';
  readonly reportError: (error: unknown) => void;
}

/**
 * What the client knows of messages beyond delivering them: the copies it
 * handed out (to apply changes to), the local search index of decrypted
 * messages, and the messages hidden for this user (deleted for me) with the
 * cursor of the `hidden` list.
 */
export class MessageState {
  readonly cache: MessageCache;
  /** Loaded at start unless `localSearch` is off. */
  private index: LocalSearch | undefined;
  private savedVersion = 0;
  private saveTimer: ReturnType<typeof setTimeout> | undefined;
  private cursor = 0;
  /** Messages hidden in this run: a `hidden` event for one hidden here already is not told twice. */
  private readonly hiddenNow = new Set<number>();

  constructor(private readonly options: MessageStateOptions) {
    this.cache = new MessageCache(options.cacheSize);
  }

  get local(): LocalSearch | undefined {
    return this.index;
  }

  /** At start: the hidden cursor, and the saved index (when the store keeps one). */
  async load(hiddenCursor: number | undefined): Promise<void> {
    this.cursor = hiddenCursor ?? 0;
    const { store, localSearch } = this.options;
    if (localSearch === 'off') return;
    this.index = await LocalSearch.load(localSearch === 'store' ? await store.loadLocalIndex?.() : undefined);
    this.savedVersion = this.index.version;
  }

  get hiddenCursor(): number {
    return this.cursor;
  }

  /** A content message the app was given (`message` event or a page): kept, and indexed when it is a decrypted one. */
  seen(message: ClientMessage): void {
    if (isChange(message)) return;
    this.cache.put(message);
    if (message.kind === 'e2e') this.indexed(message);
  }

  /** The target a change or a call is about: the cached copy, else the one in the local index. */
  target(messageId: number): ClientMessage | undefined {
    return this.cache.get(messageId) ?? this.index?.message(messageId);
  }

  /** A change message: applied to the target when the client holds it; returns the target's new state. */
  changed(row: ClientMessage & { readonly change: ChangeJson }): ClientMessage | undefined {
    const messageId = row.change.message_id;
    if (!this.cache.get(messageId)) {
      // Known only to the index (out of the cache): the index's copy takes the change.
      const indexed = this.index?.message(messageId);
      if (indexed) this.cache.put(indexed);
    }
    const updated = this.cache.apply(row);
    if (updated) this.indexed(updated);
    else if (row.change.type === 'delete') this.unindexed(messageId);
    return updated;
  }

  /**
   * Messages hidden for this user: dropped from the cache and the index; returns those not hidden here before (to
   * tell the app of). The cursor moves to the highest id, stored.
   */
  hidden(items: readonly Pick<HiddenJson, 'thread_id' | 'message_id'>[], upTo?: number): Array<Pick<HiddenJson, 'thread_id' | 'message_id'>> {
    const fresh = items.filter((item) => !this.hiddenNow.has(item.message_id));
    for (const item of items) {
      this.hiddenNow.add(item.message_id);
      this.cache.remove(item.message_id);
      this.unindexed(item.message_id);
    }
    if (upTo !== undefined && upTo > this.cursor) {
      this.cursor = upTo;
      this.options.store.setHiddenCursor?.(upTo).catch(this.options.reportError);
    }
    return fresh;
  }

  /** The server's data was replaced (new epoch, another account): ids mean other messages now. */
  reset(): void {
    this.cache.clear();
    this.hiddenNow.clear();
    this.cursor = 0;
    this.index?.clear();
    this.saveSoon();
  }

  /** Saves the index now if it changed (at close). */
  async flush(): Promise<void> {
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    await this.save();
  }

  private indexed(message: ClientMessage): void {
    this.index?.put(message);
    this.saveSoon();
  }

  private unindexed(messageId: number): void {
    this.index?.remove(messageId);
    this.saveSoon();
  }

  private saveSoon(): void {
    if (this.options.localSearch !== 'store' || !this.options.store.saveLocalIndex || this.saveTimer) return;
    if (!this.index || this.index.version === this.savedVersion) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      void this.save();
    }, SAVE_AFTER_MS);
    // A pending save does not keep a Node process alive (close() saves what is left).
    (this.saveTimer as { unref?: () => void }).unref?.();
  }

  private async save(): Promise<void> {
    const { store } = this.options;
    const index = this.index;
    if (this.options.localSearch !== 'store' || !store.saveLocalIndex || !index || index.version === this.savedVersion) return;
    const version = index.version;
    try {
      await store.saveLocalIndex(index.size > 0 ? index.serialise() : undefined);
      this.savedVersion = version;
    } catch (error) {
      this.options.reportError(error);
    }
  }
}
