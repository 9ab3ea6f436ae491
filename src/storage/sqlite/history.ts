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
      // History shows messages in their latest state: never the change rows, nor what the user hid. Closing a
      // gap (`after` with `changes`): everything sync would give, change rows included.
      const changes = 'after' in anchor && anchor.changes === true;
      const after = (afterSeq: number, limit: number) =>
        changes ? store.messages.syncAfter(userId, threadId, afterSeq, to, limit) : store.messages.visibleAfter(userId, threadId, afterSeq, to, limit);
      const before = (beforeSeq: number, limit: number) =>
        changes ? store.messages.syncBefore(userId, threadId, beforeSeq, from, limit) : store.messages.visibleBefore(userId, threadId, beforeSeq, from, limit);
      // The page splits (from, to] at a seq: up to `olderMax` rows below it (the nearest), then rows from it
      // up (after and around), `size` rows in all. One row more on each side says whether there is more there;
      // an empty page so looks from its anchor.
      let split: number;
      let olderMax = 0;
      let newer = false;
      if ('after' in anchor) [split, newer] = [anchor.after + 1, true];
      else if ('before' in anchor) [split, olderMax] = [anchor.before, size];
      else if ('around' in anchor) [split, olderMax, newer] = [Math.min(anchor.around, to), Math.floor((size - 1) / 2), true];
      else [split, olderMax] = [to + 1, size];
      split = Math.min(Math.max(split, from + 1), to + 1);
      const olderRows = before(split, olderMax + 1);
      const older = olderRows.slice(olderRows.length - Math.min(olderRows.length, olderMax));
      const newerMax = newer ? size - older.length : 0;
      const newerRows = after(split - 1, newerMax + 1);
      const newest = newerRows.slice(0, newerMax);
      return {
        messages: [...older, ...newest].map(toStoredMessage),
        from,
        to,
        moreBefore: olderRows.length > older.length,
        moreAfter: newerRows.length > newest.length,
      };
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
        // One row more than a page says whether there is more (hidden rows at the end are not).
        const rows = store.messages.syncAfter(input.userId, row.id, cursor, to, input.pageMax + 1);
        const messages = rows.slice(0, input.pageMax);
        threads.push({ threadId: row.id, lastSeq: to, messages: messages.map(toStoredMessage), hasMore: rows.length > messages.length });
      }
      return threads;
    });
  }
}
