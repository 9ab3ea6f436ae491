import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PresenceStorage } from '../../src/storage/ports/presence.js';

/** The port under test and implementation-neutral seeding, made per engine by the runner. */
export interface PresenceFixture {
  readonly storage: PresenceStorage;
  user(name: string): Promise<number>;
  /** `userId` adds `contactId` to their contacts. */
  addContact(userId: number, contactId: number): Promise<void>;
  /** A group of these users, all current members. */
  thread(userIds: readonly number[]): Promise<number>;
  deleteUser(userId: number): Promise<void>;
  close(): Promise<void>;
}

/** What every PresenceStorage must do, whatever the engine. */
export function presenceStorageContract(name: string, open: () => Promise<PresenceFixture>): void {
  describe(`PresenceStorage contract: ${name}`, () => {
    it('gives the facts the presence rules need, for existing users only, in the order asked', async () => {
      const f = await open();
      const [viewer, mate, fan, stranger, gone] = [await f.user('v'), await f.user('m'), await f.user('f'), await f.user('s'), await f.user('g')];
      await f.thread([viewer, mate, gone]);
      await f.addContact(fan, viewer);
      await f.addContact(viewer, stranger);
      await f.deleteUser(gone);
      const facts = await f.storage.facts(viewer, [stranger, mate, 999, fan, gone]);
      assert.deepEqual(
        facts.map((fact) => [fact.userId, fact.sharesThread, fact.addedViewer, fact.deleted, fact.lastActiveAt]),
        [
          [stranger, false, false, false, null],
          [mate, true, false, false, null],
          [fan, false, true, false, null],
          [gone, true, false, true, null],
        ],
        'adding someone shares your presence with them, not theirs with you',
      );
      await f.close();
    });

    it("names the audience of a user's presence: their contacts and those they share a thread with", async () => {
      const f = await open();
      const [user, mate, contact, other] = [await f.user('u'), await f.user('m'), await f.user('c'), await f.user('o')];
      await f.thread([user, mate]);
      await f.addContact(user, contact);
      await f.addContact(other, user);
      const audience = await f.storage.audience(user);
      assert.deepEqual({ contacts: audience.contacts, sharingThreads: audience.sharingThreads }, { contacts: [contact], sharingThreads: [mate] });
      await f.close();
    });

    it('stores a last-active time, read back once the write resolves', async () => {
      const f = await open();
      const user = await f.user('u');
      await f.storage.setLastActive(user, 42_000);
      assert.equal((await f.storage.facts(user, [user]))[0]?.lastActiveAt, 42_000);
      await f.close();
    });
  });
}
