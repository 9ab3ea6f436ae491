import { ChatError } from '../errors.js';
import type { RateLimitStore } from './limits/rate-limit-store.js';
import { type SearchPage, type SearchStorage, decodeSearchCursor } from '../storage/ports/search.js';
import type { Principal } from './types.js';

export interface SearchSettings {
  /** search.enabled: false answers every search not_found (the index is still kept). */
  readonly enabled: boolean;
  /** search.searches_per_minute: each user's budget (a burst of SEARCH_BURST). */
  readonly perMinute: number;
}

/** Searches a user may make at once before the per-minute rate applies. */
export const SEARCH_BURST = 10;

export interface SearchDeps {
  readonly storage: SearchStorage;
  readonly settings: SearchSettings;
  /** Where the budgets are kept (the same store as the other limits: shared by the nodes when they share one). */
  readonly limits: Pick<RateLimitStore, 'take'>;
}

export interface SearchRequest {
  readonly query: string;
  readonly threadId: number | undefined;
  readonly senderId: number | undefined;
  /** created_at bounds (ms): after < created_at < before. */
  readonly after: number | undefined;
  readonly before: number | undefined;
  readonly cursor: string | undefined;
  readonly limit: number;
}

/** The longest query, in characters (code points), once trimmed. */
export const MAX_QUERY_CHARACTERS = 200;
export const MAX_SEARCH_LIMIT = 50;

/**
 * Server-side search of the plaintext messages the user may see (docs/search.md).
 * End-to-end encrypted threads are never searched here: the server cannot read
 * them; clients search what they decrypted.
 */
export class SearchService {
  constructor(private readonly deps: SearchDeps) {}

  async search(principal: Principal, request: SearchRequest): Promise<SearchPage> {
    if (!this.deps.settings.enabled) throw new ChatError('not_found', 'search is turned off on this server (search.enabled)');
    // Control characters are no text to look for (a NUL cut SQLite's LIKE pattern short: a match of everything).
    const query = request.query.replace(/\p{Cc}/gu, ' ').trim();
    const length = [...query].length;
    if (length === 0 || length > MAX_QUERY_CHARACTERS) {
      throw new ChatError('invalid_field', `query must be 1-${MAX_QUERY_CHARACTERS} characters besides spaces`, { field: 'query' });
    }
    if (!Number.isSafeInteger(request.limit) || request.limit < 1 || request.limit > MAX_SEARCH_LIMIT) {
      throw new ChatError('invalid_field', `limit must be an integer from 1 to ${MAX_SEARCH_LIMIT}`, { field: 'limit' });
    }
    if (request.cursor !== undefined && decodeSearchCursor(request.cursor) === undefined) {
      throw new ChatError('invalid_field', 'cursor must be the next_cursor of an earlier search_results', { field: 'cursor' });
    }
    // Last, so that a refused request costs no budget: the budget bounds the searches that run.
    const { perMinute } = this.deps.settings;
    const decision = this.deps.limits.take(`search:user:${principal.user.id}`, { burst: SEARCH_BURST, refillMs: (SEARCH_BURST * 60_000) / perMinute });
    if (!decision.allowed) {
      throw new ChatError('rate_limited', `more than ${perMinute} searches a minute from this user; try again in ${decision.retryAfterSeconds} s`, {
        retryAfterSeconds: decision.retryAfterSeconds,
        details: { limit: 'search.searches_per_minute' },
      });
    }
    return this.deps.storage.search({
      userId: principal.user.id,
      query,
      threadId: request.threadId,
      senderId: request.senderId,
      after: request.after,
      before: request.before,
      cursor: request.cursor,
      limit: request.limit,
    });
  }
}
