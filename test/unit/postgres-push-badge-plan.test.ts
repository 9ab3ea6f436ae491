import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BADGE_SQL } from '../../src/storage/postgres/badge.js';
import { PostgresAdminStorage } from '../../src/storage/postgres/admin.js';
import { freshPostgres } from '../contracts/postgres-fixture.js';
import { seedUser } from '../contracts/storage-accounts.contract.js';
import { seedThreadRows } from '../helpers/postgres-seed.js';

interface PlanNode {
  readonly 'Node Type': string;
  readonly 'Actual Rows': number;
  readonly 'Actual Loops': number;
  readonly Plans?: readonly PlanNode[];
}

/** Rows every node of the executed plan produced, over all its loops: the work the statement did, counted rather than timed. */
function rowsVisited(node: PlanNode): number {
  return node['Actual Rows'] * node['Actual Loops'] + (node.Plans ?? []).reduce((sum, child) => sum + rowsVisited(child), 0);
}

describe('the badge statement on PostgreSQL', () => {
  it('visits as many rows for a member of a group of 300 as for a member of a group of 3', async () => {
    const db = await freshPostgres();
    const admin = new PostgresAdminStorage(db);
    const users: Array<{ userId: number; deviceIds: number[] }> = [];
    for (let start = 0; start < 300; start += 50) {
      users.push(...(await Promise.all(Array.from({ length: 50 }, (_, i) => seedUser(admin, `u${start + i}`, 1)))));
    }
    const sender = { userId: users[0]!.userId, deviceId: users[0]!.deviceIds[0] as number };
    const small = users.slice(0, 3);
    const inSmall = small[1]!.userId;
    const inLarge = users[299]!.userId;
    await seedThreadRows(db, small.map((user) => user.userId), sender, 4, 1);
    await seedThreadRows(db, users.slice(3).map((user) => user.userId), sender, 4, 1);
    await db.read.query('ANALYZE');
    const visited = async (userId: number): Promise<number> => {
      const { rows } = await db.read.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${BADGE_SQL}`, [userId]);
      return rowsVisited((rows[0]!['QUERY PLAN'][0] as { Plan: PlanNode }).Plan);
    };
    assert.deepEqual([await admin.badgeCount(inSmall), await admin.badgeCount(inLarge)], [4, 4], 'the same unread in either');
    assert.equal(await visited(inLarge), await visited(inSmall), 'no work per member of the group');
  });
});
