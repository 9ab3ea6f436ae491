import { ChatError } from '../errors.js';
import type { Store } from '../storage/store.js';
import type { User } from './types.js';

/** A user to act on: by id or by username. */
export type UserRef = { readonly userId: number } | { readonly username: string };

/** The user a request names, or not_found (deleted users included). */
export function resolveUser(store: Store, ref: UserRef): User {
  const row = 'userId' in ref ? store.users.findById(ref.userId) : store.users.findByUsername(ref.username);
  if (!row || row.deleted_at !== null) throw new ChatError('not_found', `no user ${'userId' in ref ? ref.userId : JSON.stringify(ref.username)}`);
  return { id: row.id, username: row.username, displayName: row.display_name };
}
