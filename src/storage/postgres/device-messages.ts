import type { DeviceMessagesStorage, SendDeviceMessageInput, SendDeviceMessageOutcome, StoredDeviceMessage } from '../ports/device-messages.js';
import type { PgDatabase } from './database.js';
import { lockDevices, signedOutOf } from './device-lock.js';

/** DeviceMessagesStorage on PostgreSQL: a bounded queue per (receiving device, sending device). */
export class PostgresDeviceMessagesStorage implements DeviceMessagesStorage {
  constructor(private readonly db: PgDatabase) {}

  /**
   * Both devices' rows are locked first (device-lock.ts): a revocation of
   * either that commits first wins, one that comes later waits (and its
   * trigger then drops what this stored for a revoked target), two sends
   * from one device on two nodes check the queue's bounds one after the other,
   * and sends to one device take their ids in commit order (an identity hands
   * them out at insert: without the lock, a smaller id could commit after the
   * receiver paged past it).
   */
  sendDeviceMessage(input: SendDeviceMessageInput): Promise<SendDeviceMessageOutcome> {
    return this.db.writes.submit(async (sql): Promise<SendDeviceMessageOutcome> => {
      const devices = await lockDevices(sql, [input.fromDevice, input.toDevice]);
      const sender = devices.get(input.fromDevice);
      const out = signedOutOf(sender);
      if (out) return out;
      const target = devices.get(input.toDevice);
      if (!target || target.userId !== input.userId || target.state.revoked || input.toDevice === input.fromDevice) return { kind: 'refused', reason: 'no_target' };
      if (!sender?.approved) return { kind: 'refused', reason: 'not_approved' };
      const queued = await sql.query<{ bytes: number; count: number }>(
        // length() of bytea is an int4; the sum a bigint (a number here).
        'SELECT coalesce(sum(length(payload)), 0)::bigint AS bytes, count(*) AS count FROM device_messages WHERE to_device = $1 AND from_device = $2',
        [input.toDevice, input.fromDevice],
      );
      const { bytes, count } = queued.rows[0] as { bytes: number; count: number };
      if (bytes + input.payload.length > input.limits.maxQueueBytes) return { kind: 'refused', reason: 'queue_bytes', queued: { bytes, count } };
      if (count + 1 > input.limits.maxQueueMessages) return { kind: 'refused', reason: 'queue_messages', queued: { bytes, count } };
      const stored = await sql.query<{ id: number }>('INSERT INTO device_messages (to_device, from_device, payload, created_at) VALUES ($1, $2, $3, $4) RETURNING id', [
        input.toDevice,
        input.fromDevice,
        input.payload,
        input.now,
      ]);
      return { kind: 'stored', id: (stored.rows[0] as { id: number }).id };
    });
  }

  async deviceMessages(toDevice: number, after: number, limit: number): Promise<StoredDeviceMessage[]> {
    const { rows } = await this.db.read.query<{ id: number; from_device: number; payload: Buffer; created_at: number }>(
      'SELECT id, from_device, payload, created_at FROM device_messages WHERE to_device = $1 AND id > $2 ORDER BY id LIMIT $3',
      [toDevice, after, limit],
    );
    return rows.map((row) => ({ id: row.id, fromDevice: row.from_device, payload: row.payload, createdAt: row.created_at }));
  }

  ackDeviceMessages(toDevice: number, upTo: number): Promise<number> {
    return this.db.writes.submit(async (sql) => (await sql.query('DELETE FROM device_messages WHERE to_device = $1 AND id <= $2', [toDevice, upTo])).rowCount);
  }

  expireDeviceMessages(before: number): Promise<number> {
    return this.db.writes.submit(async (sql) => (await sql.query('DELETE FROM device_messages WHERE created_at < $1', [before])).rowCount);
  }
}
