import { ChatError } from '../errors.js';
import type { AccountsStorage } from '../storage/ports/accounts.js';
import { toUser } from './accounts.js';
import type { Principal, User } from './types.js';

/** accounts.user_search: how far people may be found by name. */
export type UserSearchMode = 'prefix' | 'exact' | 'off';

/** Shortest prefix searched: one letter would list most of the server. */
export const MIN_PREFIX = 2;
/** Most users one search answers with. */
export const MAX_RESULTS = 20;

/**
 * Finding people to start a chat with or add to a group (the `users_search`
 * request), as far as the server's accounts.user_search allows. Disabled and
 * deleted users are never found; nor is the searcher.
 */
export class UserSearchService {
  constructor(private readonly deps: { readonly storage: Pick<AccountsStorage, 'findUsers'>; readonly mode: UserSearchMode }) {}

  async search(principal: Principal, query: string, limit: number): Promise<User[]> {
    const { mode, storage } = this.deps;
    if (mode === 'off') {
      throw new ChatError('forbidden', 'finding people is turned off on this server (accounts.user_search = "off"): ask them for their username');
    }
    const text = query.trim();
    if (mode === 'prefix' && [...text].length < MIN_PREFIX) {
      throw new ChatError('invalid_field', `query must be at least ${MIN_PREFIX} characters`, { field: 'query' });
    }
    if (text === '') throw new ChatError('invalid_field', 'query must not be blank', { field: 'query' });
    const found = await storage.findUsers({ match: mode, query: text, excludeUserId: principal.user.id, limit: Math.min(limit, MAX_RESULTS) });
    return found.map(toUser);
  }
}
