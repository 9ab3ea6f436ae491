import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BADGE_SQL } from '../../src/storage/postgres/badge.js';
import { PostgresAdminStorage } from '../../src/storage/postgres/admin.js';
import { freshPostgres } from '../contracts/postgres-fixture.js';
import { seedUser } from '../contracts/storage-accounts.contract.js';
import { seedThreadRows } from '../helpers/postgres-seed.js';

interface PlanNode {
  readonly 'Actual Rows': number;
  readonly 'Actual Loops': number;
  readonly 'Rows Removed by Filter'?: number;
  readonly 'Rows Removed by Join Filter'?: number;
  readonly 'Rows Removed by Index Recheck'?: number;
  readonly Plans?: readonly PlanNode[];
}

/** Rows every node of the executed plan produced or filtered out, over all its loops: the statement's work, counted rather than timed. */
function rowsVisited(node: PlanNode): number {
  const own = node['Actual Rows'] + (node['Rows Removed by Filter'] ?? 0) + (node['Rows Removed by Join Filter'] ?? 0) + (node['Rows Removed by Index Recheck'] ?? 0);
  return own * node['Actual Loops'] + (node.Plans ?? []).reduce((sum, child) => sum + rowsVisited(child), 0);
}

/** The old badge's shape (threads.forUser): a member count per thread. The measure must tell it apart. */
const COUNTING_MEMBERS = `SELECT sum((SELECT count(*) FROM thread_members c WHERE c.thread_id = t.id AND c.left_seq IS NULL))
  FROM thread_members m JOIN threads t ON t.id = m.thread_id WHERE m.user_id = $1`;

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
    // Plans as on a large database (index look-ups): a table this small would be read whole whatever the statement.
    const visited = (statement: string, userId: number): Promise<number> =>
      db.writes.submit(async (sql) => {
        await sql.query('SET LOCAL enable_seqscan = off');
        const { rows } = await sql.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${statement}`, [userId]);
        return rowsVisited((rows[0]!['QUERY PLAN'][0] as { Plan: PlanNode }).Plan);
      });
    assert.deepEqual([await admin.badgeCount(inSmall), await admin.badgeCount(inLarge)], [4, 4], 'the same unread in either');
    assert.ok((await visited(COUNTING_MEMBERS, inLarge)) >= (await visited(COUNTING_MEMBERS, inSmall)) + 290, 'the measure sees a member count');
    assert.equal(await visited(BADGE_SQL, inLarge), await visited(BADGE_SQL, inSmall), 'no work per member of the group');
  });
});
