import type { HistoryAnchor, HistoryStorage, StoredPage, StoredSync, SyncInput } from '../ports/history.js';
import type { Store } from '../store.js';
import { seenRange, toStoredMessage } from './append.js';

/** HistoryStorage on SQLite: each read in one read transaction (a snapshot without the write lock). */
export class SqliteHistoryStorage implements HistoryStorage {
  constructor(private readonly store: Store) {}

  async page(input: { userId: number; threadId: number; anchor: HistoryAnchor; size: number }): Promise<StoredPage | undefined> {
    const { store } = this;
    return store.read(() => {
      const { userId, threadId, anchor, size } = input;
      const membership = store.threads.membership(threadId, input.userId);
      const thread = membership ? store.threads.findById(threadId) : undefined;
      if (!membership || !thread) return undefined;
      const { from, to } = seenRange(membership, thread.last_seq);
      // History shows messages in their latest state: never the change rows, nor what the user hid.
      const after = (afterSeq: number, limit: number) => store.messages.visibleAfter(userId, threadId, afterSeq, to, limit);
      const before = (beforeSeq: number, limit: number) => store.messages.visibleBefore(userId, threadId, beforeSeq, from, limit);
      let rows;
      if ('after' in anchor && anchor.changes) {
        // Closing a gap: everything sync would give, change rows included.
        rows = store.messages.syncAfter(userId, threadId, Math.max(anchor.after, from), to, size);
      } else if ('after' in anchor) {
        rows = after(Math.max(anchor.after, from), size);
      } else if ('before' in anchor) {
        rows = before(Math.min(anchor.before, to + 1), size);
      } else if ('around' in anchor) {
        const center = Math.min(Math.max(anchor.around, from + 1), to);
        const older = before(center, Math.floor((size - 1) / 2));
        rows = [...older, ...after(center - 1, size - older.length)];
      } else {
        rows = before(to + 1, size);
      }
      return { messages: rows.map(toStoredMessage), from, to };
    });
  }

  async locate(userId: number, messageId: number, options?: { readonly anyRow?: boolean }): Promise<{ threadId: number; seq: number; from: number; to: number } | undefined> {
    const { store } = this;
    return store.read(() => {
      const row = store.messages.findById(messageId);
      // A change row is not in history, nor a message the user hid: there is nothing to jump to (unless anyRow).
      const shown = row !== undefined && (options?.anyRow === true || (row.change === null && store.hidden.find(userId, messageId) === undefined));
      const membership = shown ? store.threads.membership(row.thread_id, userId) : undefined;
      const thread = row && membership && store.threads.findById(row.thread_id);
      if (!row || !membership || !thread) return undefined;
      return { threadId: row.thread_id, seq: row.seq, ...seenRange(membership, thread.last_seq) };
    });
  }

  async sync(input: SyncInput): Promise<StoredSync[]> {
    const { store } = this;
    // The catch-up the overflow flag asks for: the flag goes first (committed), then the read. A message
    // stored between the two gets an inbox row (the device is no longer flagged) and may be in the
    // answer too (clients dedupe); cleared after the read, a message stored in between would be in
    // neither. A read that fails after the clear is an error the client retries its sync on.
    if (store.inbox.overflowed(input.deviceId)) await store.batcher.submit(() => store.inbox.clearOverflow(input.deviceId));
    return store.read(() => {
      const acked = store.cursors.forDevice(input.deviceId);
      const threads: StoredSync[] = [];
      for (const row of store.threads.forUser(input.userId)) {
        const { from, to } = seenRange(row, row.last_seq);
        const cursor = Math.max(input.cursors?.get(row.id) ?? acked.get(row.id) ?? 0, from);
        if (cursor >= to) continue;
        // Change rows included (a device that was away learns of edits, deletes and reactions); hidden messages not.
        const messages = store.messages.syncAfter(input.userId, row.id, cursor, to, input.pageMax);
        threads.push({ threadId: row.id, lastSeq: to, messages: messages.map(toStoredMessage), hasMore: (messages.at(-1)?.seq ?? to) < to });
      }
      return threads;
    });
  }
}
