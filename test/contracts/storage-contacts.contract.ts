import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AdminStorage } from '../../src/storage/ports/admin.js';
import type { ContactsStorage } from '../../src/storage/ports/contacts.js';
import { seedUser } from './storage-accounts.contract.js';

export interface ContactsFixture {
  readonly contacts: ContactsStorage;
  /** Seeds users (through AccountsStorage) and deletes them. */
  readonly admin: AdminStorage & Parameters<typeof seedUser>[0];
  /** Async: a networked engine closes its pool. */
  close(): Promise<void>;
}

/** A contact book: one row per (user, contact), listed by username, deleted users left out. */
export function contactsStorageContract(name: string, open: () => Promise<ContactsFixture>): void {
  describe(`contacts storage contract: ${name}`, () => {
    it('adds once, lists by username without deleted users, removes once', async () => {
      const { contacts, admin, close } = await open();
      const alice = await seedUser(admin, 'alice', 0);
      const zed = await seedUser(admin, 'zed', 0);
      const bob = await seedUser(admin, 'bob', 0);
      assert.equal(await contacts.addContact(alice.userId, zed.userId, 5), true);
      assert.equal(await contacts.addContact(alice.userId, zed.userId, 6), false, 'already a contact');
      assert.equal(await contacts.addContact(alice.userId, bob.userId, 7), true);
      assert.deepEqual((await contacts.contacts(alice.userId)).map((contact) => [contact.user.username, contact.user.displayName, contact.addedAt]), [
        ['bob', 'bob', 7],
        ['zed', 'zed', 5],
      ]);
      assert.deepEqual(await contacts.contacts(zed.userId), [], 'one-sided');
      await admin.deleteUser({ userId: bob.userId, now: 8 });
      assert.deepEqual((await contacts.contacts(alice.userId)).map((contact) => contact.user.username), ['zed']);
      assert.equal(await contacts.removeContact(alice.userId, zed.userId), true);
      assert.equal(await contacts.removeContact(alice.userId, zed.userId), false);
      assert.equal((await contacts.userByUsername('ZED'))?.id, zed.userId);
      await close();
    });
  });
}
