import { ClientError } from './errors.js';
import type { SearchResult } from './local-search.js';

/**
 * One `search()` over two sources: the server's (plaintext threads, paged by
 * its own cursor) and this device's index of decrypted messages (paged by
 * offset). A page takes up to `limit` of each and interleaves them, each
 * source's order kept (the two scores cannot be compared); the cursor the app
 * gets back carries both positions.
 */

/** Where the next page of each source starts; null: that source is done. `server` undefined: not asked yet. */
export interface SearchPosition {
  readonly server: string | null | undefined;
  readonly local: number | null;
}

export const FIRST_PAGE: SearchPosition = { server: undefined, local: 0 };

export function encodeSearchCursor(position: SearchPosition): string | null {
  if (position.server === null && position.local === null) return null;
  return `s1.${JSON.stringify([position.server ?? null, position.local])}`;
}

export function decodeSearchCursor(cursor: string): SearchPosition {
  try {
    if (!cursor.startsWith('s1.')) throw new Error('not this client\'s cursor');
    const [server, local] = JSON.parse(cursor.slice(3)) as [unknown, unknown];
    if ((server !== null && typeof server !== 'string') || (local !== null && (typeof local !== 'number' || !Number.isSafeInteger(local) || local < 0))) {
      throw new Error('malformed');
    }
    return { server, local };
  } catch {
    throw new ClientError('invalid_field', 'cursor is not a nextCursor of search()', false, undefined, undefined, { field: 'cursor' });
  }
}

/** Alternates between the two lists (server first), each in its own order. */
export function interleave(server: readonly SearchResult[], local: readonly SearchResult[]): SearchResult[] {
  const merged: SearchResult[] = [];
  for (let index = 0; index < Math.max(server.length, local.length); index++) {
    const fromServer = server[index];
    const fromLocal = local[index];
    if (fromServer) merged.push(fromServer);
    if (fromLocal && !merged.some((result) => result.message.id === fromLocal.message.id)) merged.push(fromLocal);
  }
  return merged;
}

/** A page of the local matches from `offset`, and where the next starts (null: none left). */
export function localPage(all: readonly SearchResult[], offset: number, limit: number): { results: SearchResult[]; next: number | null } {
  const end = offset + limit;
  return { results: all.slice(offset, end), next: end < all.length ? end : null };
}
