import { ChatError } from '../errors.js';
import type { UserLookup, StoredAccount } from '../storage/ports/accounts.js';
import type { User } from './types.js';

/** A user to act on: by id or by username. */
export type UserRef = { readonly userId: number } | { readonly username: string };

/** The user a request names, or not_found (deleted users included). */
export async function findUser(users: UserLookup, ref: UserRef): Promise<User> {
  return userOrNotFound('userId' in ref ? await users.userById(ref.userId) : await users.userByUsername(ref.username), ref);
}

function userOrNotFound(row: StoredAccount | undefined, ref: UserRef): User {
  if (!row || row.deletedAt !== null) throw new ChatError('not_found', `no user ${'userId' in ref ? ref.userId : JSON.stringify(ref.username)}`);
  return { id: row.id, username: row.username, displayName: row.displayName };
}
