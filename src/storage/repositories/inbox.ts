import type { Db } from '../database.js';
import { byLimit } from './by-limit.js';
import { type MessageRow, messageColumns } from './messages.js';

/**
 * Per-device offline inbox: every message a device has yet to acknowledge, in
 * the threads that use inboxes. Rows go when the device acknowledges them
 * (cumulatively per thread). Past the bound the device's rows are dropped and
 * the device is flagged to sync by cursors instead.
 *
 * A live device (one following its threads on a connection) gets no rows when a
 * message is stored: most messages are acknowledged within moments, and writing
 * and deleting a row for each was most of the message path's database work.
 * What a live device has not acknowledged when it goes offline is written then.
 */
export class InboxRepository {
  private readonly fanInStatement;
  private readonly countUpStatement;
  private readonly pendingStatement;
  private readonly ackStatement;
  private readonly countDownStatement;
  private readonly dropStatement;
  private readonly flagStatement;
  private readonly overflowStatement;
  private readonly clearFlagStatement;
  private readonly expiredDevicesStatement;
  private readonly goLiveStatement;
  private readonly backfillStatement;
  private readonly goOfflineStatement;
  private readonly liveDevicesStatement;
  private readonly liveAfterStatement;

  constructor(db: Db) {
    // One statement per message, whatever the number of recipient devices.
    this.fanInStatement = db.prepare<[number, number, number, number, number]>(
      `INSERT INTO inbox (device_id, message_id, thread_id, seq, created_at)
       SELECT d.id, ?, m.thread_id, ?, ?
         FROM thread_members m JOIN devices d ON d.user_id = m.user_id
        WHERE m.thread_id = ? AND m.left_seq IS NULL AND d.revoked_at IS NULL AND d.inbox_overflow = 0 AND d.live_after IS NULL AND d.id <> ?`,
    );
    // The devices the fan-in just wrote to: the same conditions, in the same transaction.
    this.countUpStatement = db.prepare<[number, number], { id: number; inbox_count: number }>(
      `UPDATE devices SET inbox_count = inbox_count + 1
        WHERE user_id IN (SELECT user_id FROM thread_members WHERE thread_id = ? AND left_seq IS NULL)
          AND revoked_at IS NULL AND inbox_overflow = 0 AND live_after IS NULL AND id <> ?
       RETURNING id, inbox_count`,
    );
    // The page size is written into the text (by-limit.ts): a bound LIMIT made SQLite plan this again at every page.
    this.pendingStatement = byLimit((limit) =>
      db.prepare<[number, number], MessageRow>(
        `SELECT ${messageColumns('m')}
           FROM inbox i JOIN messages m ON m.id = i.message_id
          WHERE i.device_id = ? AND i.message_id > ? ORDER BY i.message_id LIMIT ${limit}`,
      ),
    );
    this.ackStatement = db.prepare<[number, number, number]>('DELETE FROM inbox WHERE device_id = ? AND thread_id = ? AND seq <= ?');
    this.countDownStatement = db.prepare<[number, number]>('UPDATE devices SET inbox_count = max(0, inbox_count - ?) WHERE id = ?');
    this.dropStatement = db.prepare<[number]>('DELETE FROM inbox WHERE device_id = ?');
    this.flagStatement = db.prepare<[number]>('UPDATE devices SET inbox_overflow = 1, inbox_count = 0 WHERE id = ?');
    this.overflowStatement = db.prepare<[number], { inbox_overflow: 0 | 1 }>('SELECT inbox_overflow FROM devices WHERE id = ?');
    this.clearFlagStatement = db.prepare<[number]>('UPDATE devices SET inbox_overflow = 0 WHERE id = ?');
    this.expiredDevicesStatement = db
      // Without statistics the planner would walk the primary key (the whole inbox) for the DISTINCT.
      .prepare<[number], number>('SELECT DISTINCT device_id FROM inbox INDEXED BY inbox_by_age WHERE created_at < ?')
      .pluck();
    // Already live (a second connection): the mark stays where it was, so nothing since goes unrecorded.
    this.goLiveStatement = db.prepare<[number]>(
      'UPDATE devices SET live_after = coalesce(live_after, (SELECT max(id) FROM messages), 0) WHERE id = ?',
    );
    // What the fan-in skipped while the device was live and it has not acknowledged: the same
    // conditions as the fan-in, in the threads that still write inboxes.
    this.backfillStatement = db.prepare<[number, number]>(
      `INSERT OR IGNORE INTO inbox (device_id, message_id, thread_id, seq, created_at)
       SELECT d.id, m.id, m.thread_id, m.seq, m.created_at
         FROM devices d
         JOIN thread_members tm ON tm.user_id = d.user_id
         JOIN messages m ON m.thread_id = tm.thread_id
          AND m.seq > max(tm.joined_seq, coalesce((SELECT c.delivered_seq FROM device_cursors c WHERE c.device_id = d.id AND c.thread_id = tm.thread_id), 0))
          AND m.seq <= coalesce(tm.left_seq, m.seq)
        WHERE d.id = ? AND d.live_after IS NOT NULL AND d.revoked_at IS NULL AND d.inbox_overflow = 0
          AND m.id > d.live_after AND m.sender_device_id <> d.id
          AND (SELECT count(*) FROM thread_members x WHERE x.thread_id = tm.thread_id AND x.left_seq IS NULL) <= ?`,
    );
    this.goOfflineStatement = db.prepare<[number, number], { inbox_count: number }>(
      'UPDATE devices SET live_after = NULL, inbox_count = inbox_count + ? WHERE id = ? RETURNING inbox_count',
    );
    this.liveDevicesStatement = db.prepare<[], number>('SELECT id FROM devices WHERE live_after IS NOT NULL').pluck();
    this.liveAfterStatement = db.prepare<[number], number | null>('SELECT live_after FROM devices WHERE id = ?').pluck();
  }

  /** Whether the device is marked live (a handover is owed when it stops being live). */
  isLive(deviceId: number): boolean {
    return (this.liveAfterStatement.get(deviceId) ?? null) !== null;
  }

  /** The device follows its threads live from now on: new messages write no inbox row for it. */
  goLive(deviceId: number): void {
    this.goLiveStatement.run(deviceId);
  }

  /**
   * The device's last live connection ended: the messages it got live and has
   * not acknowledged go to its inbox. `overflowed`: that took the inbox past
   * `maxMessages` (the caller overflows it); `liveAfter`: the message id the
   * device was live after (null if it was not live: then nothing is written,
   * so a second handover of the same going offline is a no-op).
   */
  goOffline(deviceId: number, readDiffusionAbove: number, maxMessages: number): { overflowed: boolean; liveAfter: number | null } {
    const liveAfter = this.liveAfterStatement.get(deviceId) ?? null;
    if (liveAfter === null) return { overflowed: false, liveAfter };
    const added = this.backfillStatement.run(deviceId, readDiffusionAbove).changes;
    const count = this.goOfflineStatement.get(added, deviceId)?.inbox_count ?? 0;
    return { overflowed: count > maxMessages, liveAfter };
  }

  /** Devices marked live: at start-up, those that were live when the process stopped. */
  liveDevices(): number[] {
    return this.liveDevicesStatement.all();
  }

  /**
   * Puts a new message in the inbox of every device of the thread's current
   * members but the sender's, and returns the devices now over `maxMessages`
   * (the caller overflows them).
   */
  add(message: Pick<MessageRow, 'id' | 'thread_id' | 'seq' | 'sender_device_id' | 'created_at'>, maxMessages: number): number[] {
    // Nobody offline (the common case): no counts to move.
    if (this.fanInStatement.run(message.id, message.seq, message.created_at, message.thread_id, message.sender_device_id).changes === 0) return [];
    return this.countUpStatement
      .all(message.thread_id, message.sender_device_id)
      .filter((row) => row.inbox_count > maxMessages)
      .map((row) => row.id);
  }

  /** A page of the device's inbox after message `afterId`, oldest first (seq order within each thread). */
  pending(deviceId: number, afterId: number, limit: number): MessageRow[] {
    return this.pendingStatement(limit).all(deviceId, afterId);
  }

  /** Drops the device's rows of a thread up to seq (its cumulative ack). */
  acknowledge(deviceId: number, threadId: number, seq: number): void {
    const removed = this.ackStatement.run(deviceId, threadId, seq).changes;
    if (removed > 0) this.countDownStatement.run(removed, deviceId);
  }

  /** Drops the device's whole inbox and flags it to sync by cursors. */
  overflow(deviceId: number): void {
    this.dropStatement.run(deviceId);
    this.flagStatement.run(deviceId);
  }

  overflowed(deviceId: number): boolean {
    return this.overflowStatement.get(deviceId)?.inbox_overflow === 1;
  }

  clearOverflow(deviceId: number): void {
    this.clearFlagStatement.run(deviceId);
  }

  /** Devices holding inbox rows older than `cutoff`. */
  devicesWithRowsBefore(cutoff: number): number[] {
    return this.expiredDevicesStatement.all(cutoff);
  }
}
