import type { Db } from '../database.js';

/** Per device and thread: the highest seq the device acknowledged receiving. */
export class CursorsRepository {
  private readonly advanceStatement;
  private readonly forDeviceStatement;

  constructor(db: Db) {
    this.advanceStatement = db.prepare<[number, number, number]>(
      `INSERT INTO device_cursors (device_id, thread_id, delivered_seq) VALUES (?, ?, ?)
       ON CONFLICT (device_id, thread_id) DO UPDATE SET delivered_seq = max(delivered_seq, excluded.delivered_seq)`,
    );
    this.forDeviceStatement = db.prepare<[number], { thread_id: number; delivered_seq: number }>(
      'SELECT thread_id, delivered_seq FROM device_cursors WHERE device_id = ?',
    );
  }

  advance(deviceId: number, threadId: number, seq: number): void {
    this.advanceStatement.run(deviceId, threadId, seq);
  }

  /** thread id → delivered seq, for the threads the device ever acknowledged. */
  forDevice(deviceId: number): Map<number, number> {
    return new Map(this.forDeviceStatement.all(deviceId).map((row) => [row.thread_id, row.delivered_seq]));
  }
}
