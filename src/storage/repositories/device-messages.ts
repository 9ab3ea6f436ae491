import type { Db } from '../database.js';

export interface DeviceMessageRow {
  readonly id: number;
  readonly from_device: number;
  /** The payload's bytes (the wire carries them in base64). */
  readonly payload: Buffer;
  readonly created_at: number;
}

/** Messages from one device of a user to another of the same user, waiting for the receiver to acknowledge them. */
export class DeviceMessagesRepository {
  private readonly insertStatement;
  private readonly queueBytesStatement;
  private readonly pageStatement;
  private readonly ackStatement;
  private readonly expireStatement;

  constructor(db: Db) {
    this.insertStatement = db.prepare<[number, number, Buffer, number]>(
      'INSERT INTO device_messages (to_device, from_device, payload, created_at) VALUES (?, ?, ?, ?)',
    );
    this.queueBytesStatement = db.prepare<[number, number], { bytes: number; count: number }>(
      'SELECT coalesce(sum(length(payload)), 0) AS bytes, count(*) AS count FROM device_messages WHERE to_device = ? AND from_device = ?',
    );
    this.pageStatement = db.prepare<[number, number, number], DeviceMessageRow>(
      'SELECT id, from_device, payload, created_at FROM device_messages WHERE to_device = ? AND id > ? ORDER BY id LIMIT ?',
    );
    this.ackStatement = db.prepare<[number, number]>('DELETE FROM device_messages WHERE to_device = ? AND id <= ?');
    this.expireStatement = db.prepare<[number]>('DELETE FROM device_messages WHERE created_at < ?');
  }

  /** Stores a message; returns its id. */
  insert(toDevice: number, fromDevice: number, payload: Buffer, now: number): number {
    return Number(this.insertStatement.run(toDevice, fromDevice, payload, now).lastInsertRowid);
  }

  /** The payload bytes and messages from one device waiting for another. */
  queued(toDevice: number, fromDevice: number): { bytes: number; count: number } {
    return this.queueBytesStatement.get(toDevice, fromDevice) ?? { bytes: 0, count: 0 };
  }

  /** The device's messages after id `afterId`, oldest first, at most `limit`. */
  page(toDevice: number, afterId: number, limit: number): DeviceMessageRow[] {
    return this.pageStatement.all(toDevice, afterId, limit);
  }

  /** Deletes the device's messages up to id `upTo`; returns how many. */
  ack(toDevice: number, upTo: number): number {
    return this.ackStatement.run(toDevice, upTo).changes;
  }

  /** Deletes every message stored before `before` (ms); returns how many. */
  expire(before: number): number {
    return this.expireStatement.run(before).changes;
  }
}
