import type { Clock } from '../clock.js';
import { ChatError } from '../errors.js';
import type { Store } from '../storage/store.js';
import type { Principal, User } from './types.js';
import { type UserRef, resolveUser } from './users.js';

export interface Contact {
  readonly user: User;
  readonly addedAt: number;
}

/** A user's contact book. Adding someone also lets them see your presence. */
export class ContactService {
  constructor(private readonly deps: { readonly store: Store; readonly clock: Clock }) {}

  add(principal: Principal, ref: UserRef): Contact {
    const { store, clock } = this.deps;
    const row = resolveUser(store, ref);
    if (row.id === principal.user.id) throw new ChatError('invalid_field', 'you cannot add yourself as a contact', { field: 'user_id' });
    store.contacts.add(principal.user.id, row.id, clock.now());
    return this.list(principal).find((contact) => contact.user.id === row.id) as Contact;
  }

  remove(principal: Principal, userId: number): void {
    if (!this.deps.store.contacts.remove(principal.user.id, userId)) throw new ChatError('not_found', `user ${userId} is not among your contacts`);
  }

  list(principal: Principal): Contact[] {
    return this.deps.store.contacts.list(principal.user.id).map((row) => ({
      user: { id: row.user_id, username: row.username, displayName: row.display_name },
      addedAt: row.created_at,
    }));
  }
}
