import type { StoredAccount, UserLookup } from './accounts.js';

/** One of a user's contacts: who, and when they were added. */
export interface StoredContact {
  readonly user: Pick<StoredAccount, 'id' | 'username' | 'displayName'>;
  readonly addedAt: number;
}

/** ContactService's storage: a user's contact book (one row per pair, the adder's side). */
export interface ContactsStorage extends UserLookup {
  /** Resolves true when added, false when it was a contact already (nothing changes). */
  addContact(userId: number, contactUserId: number, now: number): Promise<boolean>;
  /** Resolves false when it was no contact. */
  removeContact(userId: number, contactUserId: number): Promise<boolean>;
  /** The user's contacts that are not deleted, by username. */
  contacts(userId: number): Promise<StoredContact[]>;
}
