import type { StoredMessage } from './messaging.js';

/**
 * Server-side search of plaintext messages (docs/search.md). The engines read
 * the query with storage/search/query.ts (never as query syntax) and see to
 * visibility in their SQL: only threads the user is or was a member of, only
 * seqs within (joined_seq, left_seq or the thread's last], never e2e, system
 * or change rows, deleted messages, or the user's hidden ones.
 */

export interface SearchInput {
  readonly userId: number;
  /** What the user typed: 1-200 characters (the service checks). */
  readonly query: string;
  readonly threadId?: number | undefined;
  readonly senderId?: number | undefined;
  /** created_at bounds (ms): after < created_at < before. */
  readonly after?: number | undefined;
  readonly before?: number | undefined;
  /** nextCursor of the previous page (checked with decodeSearchCursor by the service). */
  readonly cursor?: string | undefined;
  /** 1-50. */
  readonly limit: number;
}

export interface SearchHit {
  readonly message: StoredMessage;
  /** Plain text around the first hit (… where cut), at most about 160 characters. */
  readonly snippet: string;
  /** [start, end) UTF-16 offsets of the hits in `snippet`, in order. */
  readonly highlights: Array<[number, number]>;
}

export interface SearchPage {
  /** Best first (word relevance), then newest. */
  readonly results: SearchHit[];
  /** Pass as `cursor` for the next page; null: no more. */
  readonly nextCursor: string | null;
}

/** What `chatd db check` reports of the search index. */
export interface SearchIndexCheck {
  readonly ok: boolean;
  /** Messages that should be in the index, and entries it has. */
  readonly searchable: number;
  readonly indexed: number;
  /** What is wrong, in words (empty when ok). */
  readonly problems: string[];
}

export interface SearchStorage {
  search(input: SearchInput): Promise<SearchPage>;
  /**
   * Compares the index with the messages. On SQLite, `thorough` also runs
   * FTS5's integrity-check against the messages' text, which holds the write
   * lock throughout (seconds per 100,000 messages): only when no server has
   * the file open. Without it, the entry counts.
   */
  check(options?: { readonly thorough?: boolean }): Promise<SearchIndexCheck>;
  /**
   * Drops the index and builds it again from the messages, in one
   * transaction (writes wait for it). `onProgress`: (messages indexed, of total).
   */
  rebuild(onProgress?: (done: number, total: number) => void): Promise<{ readonly indexed: number }>;
}

/** Results past this many are not paged to: refine the query. */
export const MAX_SEARCH_RESULTS = 1000;

/** A page's position as an opaque cursor (base64url): clients pass it back, never read it. */
export function encodeSearchCursor(offset: number): string {
  return Buffer.from(`o${offset}`, 'utf8').toString('base64url');
}

/** The offset a cursor stands for; undefined when it is not one this server made. */
export function decodeSearchCursor(cursor: string): number | undefined {
  if (!/^[A-Za-z0-9_-]{1,16}$/.test(cursor)) return undefined;
  const match = /^o(0|[1-9]\d{0,5})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  const offset = match ? Number(match[1]) : undefined;
  return offset !== undefined && offset < MAX_SEARCH_RESULTS ? offset : undefined;
}

/** The cursor after a page that began at `offset` and found `limit` results and more: null at the end or at MAX_SEARCH_RESULTS. */
export function nextSearchCursor(offset: number, limit: number, more: boolean): string | null {
  return more && offset + limit < MAX_SEARCH_RESULTS ? encodeSearchCursor(offset + limit) : null;
}
