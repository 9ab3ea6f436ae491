import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BADGE_SQL } from '../../src/storage/repositories/badge.js';
import { memoryStore, seedThread } from '../contracts/sqlite-fixture.js';
import { seedUser } from '../contracts/storage-accounts.contract.js';
import { SqliteAdminStorage } from '../../src/storage/sqlite/admin.js';

describe('the badge statement on SQLite', () => {
  it("reads the user's memberships by user, each thread by id and the change-row counts by (thread, seq): nothing per member of a group", () => {
    const store = memoryStore();
    const plan = store.db
      .prepare<[number], { detail: string }>(`EXPLAIN QUERY PLAN ${BADGE_SQL}`)
      .all(1)
      .map((row) => row.detail)
      .filter((detail) => /^(SEARCH|SCAN)/.test(detail));
    assert.deepEqual(plan, [
      'SEARCH m USING INDEX thread_members_by_user (user_id=?)',
      'SEARCH t USING INTEGER PRIMARY KEY (rowid=?)',
      'SEARCH u USING INDEX sqlite_autoindex_messages_1 (thread_id=? AND seq=?)',
      'SEARCH u USING INDEX sqlite_autoindex_messages_1 (thread_id=? AND seq=?)',
    ]);
  });

  it('gives the same badge for a member of a group of 3 and of a group of 200 with the same unread', async () => {
    const store = memoryStore();
    const admin = new SqliteAdminStorage(store);
    const users = [];
    for (let i = 0; i < 200; i++) users.push(await seedUser(admin, `u${i}`, 1));
    const sender = { userId: users[0]!.userId, deviceId: users[0]!.deviceIds[0] as number };
    seedThread(store, users.slice(0, 3).map((user) => user.userId), sender, 4, 1);
    seedThread(store, users.map((user) => user.userId), sender, 4, 1);
    const badge = store.db.prepare<[number], number>(BADGE_SQL).pluck();
    assert.equal(badge.get(users[1]!.userId), 8, 'in both');
    assert.equal(badge.get(users[199]!.userId), 4, 'in the large group only');
  });
});
