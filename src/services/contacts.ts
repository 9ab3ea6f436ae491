import type { Clock } from '../clock.js';
import { ChatError } from '../errors.js';
import type { ContactsStorage } from '../storage/ports/contacts.js';
import type { Principal, User } from './types.js';
import { type UserRef, findUser } from './users.js';

export interface Contact {
  readonly user: User;
  readonly addedAt: number;
}

/** A user's contact book. Adding someone also lets them see your presence. */
export class ContactService {
  constructor(private readonly deps: { readonly storage: ContactsStorage; readonly clock: Clock }) {}

  async add(principal: Principal, ref: UserRef): Promise<Contact> {
    const { storage, clock } = this.deps;
    const row = await findUser(storage, ref);
    if (row.id === principal.user.id) throw new ChatError('invalid_field', 'you cannot add yourself as a contact', { field: 'user_id' });
    await storage.addContact(principal.user.id, row.id, clock.now());
    return (await this.list(principal)).find((contact) => contact.user.id === row.id) as Contact;
  }

  async remove(principal: Principal, userId: number): Promise<void> {
    if (!(await this.deps.storage.removeContact(principal.user.id, userId))) throw new ChatError('not_found', `user ${userId} is not among your contacts`);
  }

  async list(principal: Principal): Promise<Contact[]> {
    return (await this.deps.storage.contacts(principal.user.id)).map((contact) => ({
      user: { id: contact.user.id, username: contact.user.username, displayName: contact.user.displayName },
      addedAt: contact.addedAt,
    }));
  }
}
