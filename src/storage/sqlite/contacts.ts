import type { ContactsStorage, StoredContact } from '../ports/contacts.js';
import type { StoredAccount } from '../ports/accounts.js';
import type { Store } from '../store.js';
import { mapped, toStoredAccount } from './rows.js';

export class SqliteContactsStorage implements ContactsStorage {
  constructor(private readonly store: Store) {}

  async userById(id: number): Promise<StoredAccount | undefined> {
    return mapped(this.store.users.findById(id), toStoredAccount);
  }

  async userByUsername(username: string): Promise<StoredAccount | undefined> {
    return mapped(this.store.users.findByUsername(username), toStoredAccount);
  }

  addContact(userId: number, contactUserId: number, now: number): Promise<boolean> {
    return this.store.batcher.submit(() => this.store.contacts.add(userId, contactUserId, now));
  }

  removeContact(userId: number, contactUserId: number): Promise<boolean> {
    return this.store.batcher.submit(() => this.store.contacts.remove(userId, contactUserId));
  }

  async contacts(userId: number): Promise<StoredContact[]> {
    return this.store.contacts.list(userId).map((row) => ({ user: { id: row.user_id, username: row.username, displayName: row.display_name }, addedAt: row.created_at }));
  }
}
