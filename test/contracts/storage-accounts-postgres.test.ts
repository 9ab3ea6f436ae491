import type { AccountEvent, AccountEventsStorage } from '../../src/storage/ports/account-events.js';
import { PostgresAdminStorage } from '../../src/storage/postgres/admin.js';
import type { PgDatabase } from '../../src/storage/postgres/database.js';
import { anotherNode, freshPostgres } from './postgres-fixture.js';
import { accountsStorageContract } from './storage-accounts.contract.js';

/**
 * The two reads of account events this contract makes, over SQL: PG-B's
 * PostgresAccountEventsStorage replaces it when both land (the contract
 * judges what the units record, not how it is read).
 */
class EventsRead implements AccountEventsStorage {
  constructor(private readonly db: PgDatabase) {}

  async changedElsewhere(): Promise<boolean> {
    return true;
  }

  async accountEventsAfter(afterId: number, limit: number): Promise<AccountEvent[]> {
    const { rows } = await this.db.read.query<{ id: number; user_id: number; device_id: number | null; reason: AccountEvent['reason']; created_at: number }>(
      'SELECT id, user_id, device_id, reason, created_at FROM account_events WHERE id > $1 ORDER BY id LIMIT $2',
      [afterId, limit],
    );
    return rows.map((row) => ({ id: row.id, userId: row.user_id, deviceId: row.device_id, reason: row.reason, createdAt: row.created_at }));
  }

  async latestAccountEventId(): Promise<number> {
    const { rows } = await this.db.read.query<{ id: number }>('SELECT coalesce(max(id), 0)::bigint AS id FROM account_events');
    return rows[0]?.id ?? 0;
  }
}

accountsStorageContract('PostgreSQL', async () => {
  const db = await freshPostgres();
  const admin = new PostgresAdminStorage(db);
  return {
    accounts: admin,
    admin,
    events: new EventsRead(db),
    seedInvite: (codeHash, maxUses, expiresAt) => admin.createInvite({ codeHash, codePrefix: 'TEST', now: 1, expiresAt, maxUses, note: '' }),
    // Another node: its own pool and group commit, so its units really race this one's.
    anotherAccounts: async () => new PostgresAdminStorage(await anotherNode(db)),
    // The fixture closes every pool after the file's tests.
    close: async () => {},
  };
});
