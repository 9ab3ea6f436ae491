import type { ContactRow, ContactsStorage } from '../ports/contacts.js';
import type { UserRow } from '../repositories/users.js';
import type { Store } from '../store.js';

export class SqliteContactsStorage implements ContactsStorage {
  constructor(private readonly store: Store) {}

  async userById(id: number): Promise<UserRow | undefined> {
    return this.store.users.findById(id);
  }

  async userByUsername(username: string): Promise<UserRow | undefined> {
    return this.store.users.findByUsername(username);
  }

  addContact(userId: number, contactUserId: number, now: number): Promise<boolean> {
    return this.store.batcher.submit(() => this.store.contacts.add(userId, contactUserId, now));
  }

  removeContact(userId: number, contactUserId: number): Promise<boolean> {
    return this.store.batcher.submit(() => this.store.contacts.remove(userId, contactUserId));
  }

  async contacts(userId: number): Promise<ContactRow[]> {
    return this.store.contacts.list(userId);
  }
}
