import type { DeliveryStorage, InboxPage, OfflineOutcome, OfflineRules } from '../ports/delivery.js';
import { anyPushPlatform } from '../ports/push.js';
import type { StoredMessage } from '../ports/messaging.js';
import type { PgDatabase } from './database.js';
import type { Sql } from './sql.js';
import { messageColumns } from './append.js';

/** A message row as the ports spell it (the aliases do the mapping). */
const MESSAGE = messageColumns('m');

// What the fan-in skipped while the device was live and it has not acknowledged: the same
// conditions as the fan-in, in the threads that still write inboxes (as on SQLite).
const BACKFILL = `INSERT INTO inbox (device_id, message_id, thread_id, seq, created_at)
  SELECT d.id, m.id, m.thread_id, m.seq, m.created_at
    FROM devices d
    JOIN thread_members tm ON tm.user_id = d.user_id
    JOIN messages m ON m.thread_id = tm.thread_id
     AND m.seq > greatest(tm.joined_seq, coalesce((SELECT c.delivered_seq FROM device_cursors c WHERE c.device_id = d.id AND c.thread_id = tm.thread_id), 0))
     AND m.seq <= coalesce(tm.left_seq, m.seq)
   WHERE d.id = $1 AND d.live_after IS NOT NULL AND d.revoked_at IS NULL AND NOT d.inbox_overflow
     AND m.id > d.live_after AND m.sender_device_id <> d.id
     AND (SELECT count(*) FROM thread_members x WHERE x.thread_id = tm.thread_id AND x.left_seq IS NULL) <= $2
  ON CONFLICT DO NOTHING`;

// A notification per thread for the newest message the device got live but never acknowledged (never moving a
// pending one back to an older message: another node's expansion may have queued a newer one meanwhile). Change
// rows make none; in a thread the user muted, only a message that mentions them does.
const ENQUEUE_UNACKED = `INSERT INTO push_queue (device_id, thread_id, message_id, created_at, not_before)
  SELECT d.id, i.thread_id, max(i.message_id), max(i.created_at), $1
    FROM inbox i
    JOIN devices d ON d.id = i.device_id
    JOIN messages msg ON msg.id = i.message_id
    JOIN thread_members m ON m.thread_id = i.thread_id AND m.user_id = d.user_id
   WHERE i.device_id = $2 AND i.message_id > $3 AND msg.sender_user_id <> d.user_id AND msg.kind <> 'system' AND msg.change IS NULL
     AND (NOT m.muted OR coalesce(msg.mentions::jsonb @> to_jsonb(d.user_id), false)) AND d.push_token IS NOT NULL
     AND (($4 AND d.push_platform = 'apns') OR ($5 AND d.push_platform = 'fcm') OR ($6 AND d.push_platform = 'webpush'))
   GROUP BY d.id, i.thread_id
  ON CONFLICT (device_id, thread_id) DO UPDATE SET message_id = excluded.message_id, created_at = excluded.created_at
   WHERE push_queue.message_id < excluded.message_id`;

/**
 * DeliveryStorage on PostgreSQL. Several nodes run units at once here, so
 * what SQLite's single writer gave for free is taken with locks:
 *
 * - every unit for one device locks the device row (`FOR NO KEY UPDATE`: inserts that reference the device, which take KEY SHARE, need not wait) before it
 *   reads it, so two handovers of one going offline (the old node's close,
 *   the new node's open) run one after the other and the second finds the
 *   device unmarked;
 * - going live and going offline share-lock the user's current threads (in id
 *   order, before the device row: see lockDevice) before reading messages. The message path updates a thread's row
 *   (its seq) before it takes a message id and writes the inbox rows, and
 *   holds that lock to its commit: waiting for it means no message of those
 *   threads is half-written while the mark is read or set. Without it a
 *   message whose id was taken before the live mark but whose inbox rows were
 *   written after it (ids are not in commit order here) would be in neither
 *   the inbox nor the backfill, and a message written while the device was
 *   still live but committed after the backfill read would be lost the same way.
 *
 * Read-committed transactions: each statement sees what committed before it,
 * so the statements after the locks see the writes they waited for.
 */
export class PostgresDeliveryStorage implements DeliveryStorage {
  constructor(private readonly db: PgDatabase) {}

  isLive(deviceId: number): Promise<boolean> {
    return this.isLiveIn(this.db.read, deviceId);
  }

  private async isLiveIn(sql: Sql, deviceId: number): Promise<boolean> {
    const { rows } = await sql.query<{ live: boolean }>('SELECT live_after IS NOT NULL AS live FROM devices WHERE id = $1', [deviceId]);
    return rows[0]?.live ?? false;
  }

  goLive(deviceId: number): Promise<void> {
    return this.db.writes.submit(async (sql) => {
      // Already live (a second connection): the mark stays where it was, so nothing since goes unrecorded.
      // Looked at before taking any lock: a reconnect storm mostly finds its devices live (or unmarked
      // since by a handover, which leaves them writing inbox rows: nothing lost either way).
      if (await this.isLiveIn(sql, deviceId)) return;
      const device = await lockDevice(sql, deviceId);
      if (!device || device.liveAfter !== null) return;
      await sql.query('UPDATE devices SET live_after = coalesce((SELECT max(id) FROM messages), 0) WHERE id = $1', [deviceId]);
    });
  }

  goOffline(deviceId: number, rules: OfflineRules): Promise<OfflineOutcome> {
    return this.db.writes.submit((sql) => this.writeOffline(sql, deviceId, rules));
  }

  recoverLiveDevices(rules: OfflineRules): Promise<number> {
    return this.db.writes.submit(async (sql) => {
      // In id order, as every unit that locks several devices does (no deadlock between two of them).
      const { rows } = await sql.query<{ id: number }>('SELECT id FROM devices WHERE live_after IS NOT NULL ORDER BY id');
      let handedOver = 0;
      for (const { id } of rows) if ((await this.writeOffline(sql, id, rules)).wasLive) handedOver++;
      return handedOver;
    });
  }

  expireInboxes(cutoff: number): Promise<number[]> {
    return this.db.writes.submit(async (sql) => {
      const candidates = await sql.query<{ id: number }>(
        'SELECT id FROM devices WHERE id IN (SELECT DISTINCT device_id FROM inbox WHERE created_at < $1) ORDER BY id FOR NO KEY UPDATE',
        [cutoff],
      );
      if (candidates.rows.length === 0) return [];
      // Locked: looked at again, as another node may have acknowledged or dropped the rows meanwhile.
      const { rows } = await sql.query<{ device_id: number }>(
        'SELECT DISTINCT device_id FROM inbox WHERE device_id = ANY($1::bigint[]) AND created_at < $2 ORDER BY device_id',
        [candidates.rows.map((row) => row.id), cutoff],
      );
      const devices = rows.map((row) => row.device_id);
      if (devices.length > 0) await overflow(sql, devices);
      return devices;
    });
  }

  inboxPage(deviceId: number, afterId: number, limit: number): Promise<InboxPage> {
    return this.db.snapshot(async (sql) => {
      const { rows: messages } = await sql.query<Readonly<StoredMessage>>(
        `SELECT ${MESSAGE} FROM inbox i JOIN messages m ON m.id = i.message_id
          WHERE i.device_id = $1 AND i.message_id > $2 ORDER BY i.message_id LIMIT $3`,
        [deviceId, afterId, limit],
      );
      const device = (await sql.query<{ user_id: number; inbox_overflow: boolean }>('SELECT user_id, inbox_overflow FROM devices WHERE id = $1', [deviceId])).rows[0];
      const overflowed = device?.inbox_overflow ?? false;
      if (messages.length > 0 || device === undefined) return { messages, overflowed, followedThreadIds: undefined };
      const threads = await sql.query<{ thread_id: number }>('SELECT thread_id FROM thread_members WHERE user_id = $1 AND left_seq IS NULL ORDER BY thread_id', [device.user_id]);
      return { messages, overflowed, followedThreadIds: threads.rows.map((row) => row.thread_id) };
    });
  }

  async inboxOverflowed(deviceId: number): Promise<boolean> {
    const { rows } = await this.db.read.query<{ inbox_overflow: boolean }>('SELECT inbox_overflow FROM devices WHERE id = $1', [deviceId]);
    return rows[0]?.inbox_overflow ?? false;
  }

  /** Inside the caller's transaction. */
  private async writeOffline(sql: Sql, deviceId: number, rules: OfflineRules): Promise<OfflineOutcome> {
    const device = await lockDevice(sql, deviceId);
    const liveAfter = device?.liveAfter ?? null;
    // Not live (or a handover on another node came first and unmarked it): nothing to write.
    if (!device || liveAfter === null) return { wasLive: false, overflowed: false, pushesQueued: false };
    const added = (await sql.query(BACKFILL, [deviceId, rules.readDiffusionAbove])).rowCount;
    const { rows } = await sql.query<{ inbox_count: number }>(
      'UPDATE devices SET live_after = NULL, inbox_count = inbox_count + $1 WHERE id = $2 RETURNING inbox_count',
      [added, deviceId],
    );
    const overflowed = (rows[0]?.inbox_count ?? 0) > rules.maxMessages;
    const pushesQueued = anyPushPlatform(rules.push);
    if (pushesQueued) await sql.query(ENQUEUE_UNACKED, [rules.now, deviceId, liveAfter, rules.push.apns, rules.push.fcm, rules.push.webpush === true]);
    if (overflowed) await overflow(sql, [deviceId]);
    return { wasLive: true, overflowed, pushesQueued };
  }
}

/**
 * Locks what a unit for one device works on, to the end of the transaction:
 * first the threads its user is a current member of (shared, in id order: it
 * waits for the message writes under way in them and holds new ones back, see
 * the class comment), then the device row (exclusive: units for one device
 * run one after the other, across nodes). In that order because the message
 * path locks a thread (its seq) and then the rows of the devices it writes
 * inbox rows for (their counts): the other order would deadlock with a message
 * being written to a device that is going live. The threads are found by the
 * device's user, which never changes, so the unlocked read is safe.
 */
async function lockDevice(sql: Sql, deviceId: number): Promise<{ userId: number; liveAfter: number | null } | undefined> {
  await sql.query(
    `SELECT id FROM threads
      WHERE id IN (SELECT tm.thread_id FROM devices d JOIN thread_members tm ON tm.user_id = d.user_id WHERE d.id = $1 AND tm.left_seq IS NULL)
      ORDER BY id FOR SHARE`,
    [deviceId],
  );
  const { rows } = await sql.query<{ userId: number; liveAfter: number | null }>(
    'SELECT user_id AS "userId", live_after AS "liveAfter" FROM devices WHERE id = $1 FOR NO KEY UPDATE',
    [deviceId],
  );
  return rows[0];
}

/** Drops the devices' whole inboxes and flags them to sync by cursors. */
async function overflow(sql: Sql, deviceIds: readonly number[]): Promise<void> {
  await sql.query('DELETE FROM inbox WHERE device_id = ANY($1::bigint[])', [deviceIds]);
  await sql.query('UPDATE devices SET inbox_overflow = true, inbox_count = 0 WHERE id = ANY($1::bigint[])', [deviceIds]);
}
