import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChatError } from '../../src/errors.js';
import { UserSearchService } from '../../src/services/user-search.js';
import type { StoredAccount, UserQuery } from '../../src/storage/ports/accounts.js';
import type { Principal } from '../../src/services/types.js';

const me: Principal = { user: { id: 1, username: 'me', displayName: 'Me' }, deviceId: 1 };
const ann: StoredAccount = { id: 2, username: 'ann', displayName: 'Ann Lee', passwordHash: 'h', disabled: false, createdAt: 0, deletedAt: null, lastActiveAt: null };

/** The service over a storage that records what it was asked (the engines' answers are the contract suite's). */
function service(mode: 'prefix' | 'exact' | 'off'): { people: UserSearchService; asked: UserQuery[] } {
  const asked: UserQuery[] = [];
  const storage = { findUsers: async (query: UserQuery) => (asked.push(query), [ann]) };
  return { people: new UserSearchService({ storage, mode }), asked };
}

describe('finding people as accounts.user_search allows', () => {
  it('"prefix" asks the storage for a trimmed prefix of 2+ characters, without the searcher, at most 20', async () => {
    const { people, asked } = service('prefix');
    assert.deepEqual(await people.search(me, '  an ', 50), [{ id: 2, username: 'ann', displayName: 'Ann Lee' }]);
    assert.deepEqual(asked, [{ match: 'prefix', query: 'an', excludeUserId: 1, limit: 20 }]);
    await assert.rejects(people.search(me, ' a ', 10), (error: ChatError) => error.code === 'invalid_field' && error.field === 'query' && /at least 2 characters/.test(error.message));
    await assert.rejects(people.search(me, '   ', 10), (error: ChatError) => error.code === 'invalid_field');
    assert.equal(asked.length, 1, 'a refused query reaches no storage');
  });

  it('"exact" asks for a whole username, one character being enough', async () => {
    const { people, asked } = service('exact');
    await people.search(me, 'x', 5);
    assert.deepEqual(asked, [{ match: 'exact', query: 'x', excludeUserId: 1, limit: 5 }]);
  });

  it('"off" refuses every search with forbidden, naming the setting', async () => {
    const { people, asked } = service('off');
    await assert.rejects(people.search(me, 'ann', 10), (error: ChatError) => error.code === 'forbidden' && /accounts\.user_search = "off"/.test(error.message));
    assert.deepEqual(asked, []);
  });
});
