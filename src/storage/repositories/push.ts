import type { Db } from '../database.js';
import type { MessageKind } from './messages.js';

export type PushPlatform = 'apns' | 'fcm';

export interface PushRegistration {
  readonly platform: PushPlatform;
  readonly token: string;
  /** APNs: the app's bundle id (the notification's topic); null for FCM or the configured default. */
  readonly topic: string | null;
}

/** A due push with everything needed to decide on it and build its notification. */
export interface DuePushRow {
  readonly id: number;
  readonly device_id: number;
  readonly thread_id: number;
  readonly message_id: number;
  readonly created_at: number;
  readonly attempts: number;
  readonly user_id: number;
  readonly push_platform: PushPlatform | null;
  readonly push_token: string | null;
  readonly push_topic: string | null;
  readonly device_live: 0 | 1;
  readonly device_revoked: 0 | 1;
  readonly seq: number;
  readonly kind: MessageKind;
  readonly body: string;
  readonly sender_name: string;
  readonly thread_kind: 'direct' | 'group';
  readonly thread_title: string | null;
  /** The recipient's read cursor in the thread, and whether they muted it since. */
  readonly read_seq: number;
  readonly muted: 0 | 1;
}

export type PushCounter = 'sent' | 'failed' | 'dropped_tokens' | 'skipped';

export interface PushCounts {
  readonly sent: number;
  readonly failed: number;
  readonly dropped_tokens: number;
  readonly skipped: number;
  readonly queued: number;
}

/** Push tokens of devices, the push queue and its counters. */
export class PushRepository {
  private readonly takeTokenStatement;
  private readonly setTokenStatement;
  private readonly clearTokenStatement;
  private readonly dropTokenStatement;
  private readonly enqueueStatement;
  private readonly dueStatement;
  private readonly nextDueStatement;
  private readonly doneStatement;
  private readonly forgetDeviceStatement;
  private readonly retryStatement;
  private readonly bumpStatement;
  private readonly countersStatement;
  private readonly depthStatement;
  private readonly registrationStatement;

  constructor(db: Db) {
    this.takeTokenStatement = db.prepare<[string, number]>(
      'UPDATE devices SET push_platform = NULL, push_token = NULL, push_topic = NULL WHERE push_token = ? AND id <> ?',
    );
    this.setTokenStatement = db.prepare<[string, string, string | null, number]>(
      'UPDATE devices SET push_platform = ?, push_token = ?, push_topic = ? WHERE id = ?',
    );
    this.clearTokenStatement = db.prepare<[number]>('UPDATE devices SET push_platform = NULL, push_token = NULL, push_topic = NULL WHERE id = ?');
    this.dropTokenStatement = db.prepare<[number, string]>(
      'UPDATE devices SET push_platform = NULL, push_token = NULL, push_topic = NULL WHERE id = ? AND push_token = ?',
    );
    // Every device of the other current members that has a token for a configured provider,
    // is not live and has not muted the thread.
    this.enqueueStatement = db.prepare<[number, number, number, number, number, 0 | 1, 0 | 1]>(
      `INSERT INTO push_queue (device_id, thread_id, message_id, created_at, not_before)
       SELECT d.id, m.thread_id, ?, ?, ?
         FROM thread_members m JOIN devices d ON d.user_id = m.user_id
        WHERE m.thread_id = ? AND m.left_seq IS NULL AND m.muted = 0 AND m.user_id <> ?
          AND d.revoked_at IS NULL AND d.live_after IS NULL AND d.push_token IS NOT NULL
          AND ((? = 1 AND d.push_platform = 'apns') OR (? = 1 AND d.push_platform = 'fcm'))`,
    );
    this.dueStatement = db.prepare<[number, number], DuePushRow>(
      `SELECT q.id, q.device_id, q.thread_id, q.message_id, q.created_at, q.attempts,
              d.user_id, d.push_platform, d.push_token, d.push_topic,
              d.live_after IS NOT NULL AS device_live, d.revoked_at IS NOT NULL AS device_revoked,
              msg.seq, msg.kind, msg.body, u.display_name AS sender_name,
              t.kind AS thread_kind, t.title AS thread_title,
              coalesce(tm.read_seq, 0) AS read_seq, coalesce(tm.muted, 0) AS muted
         FROM push_queue q
         JOIN devices d ON d.id = q.device_id
         JOIN messages msg ON msg.id = q.message_id
         JOIN users u ON u.id = msg.sender_user_id
         JOIN threads t ON t.id = q.thread_id
         LEFT JOIN thread_members tm ON tm.thread_id = q.thread_id AND tm.user_id = d.user_id
        WHERE q.not_before <= ?
          AND q.id = (SELECT max(x.id) FROM push_queue x WHERE x.device_id = q.device_id AND x.thread_id = q.thread_id)
        ORDER BY q.not_before, q.id
        LIMIT ?`,
    );
    this.nextDueStatement = db.prepare<[number], number | null>('SELECT min(not_before) FROM push_queue WHERE not_before > ?').pluck();
    this.doneStatement = db.prepare<[number, number, number]>('DELETE FROM push_queue WHERE device_id = ? AND thread_id = ? AND id <= ?');
    this.forgetDeviceStatement = db.prepare<[number]>('DELETE FROM push_queue WHERE device_id = ?');
    this.retryStatement = db.prepare<[number, string, number]>(
      'UPDATE push_queue SET attempts = attempts + 1, not_before = ?, last_error = ? WHERE id = ?',
    );
    this.bumpStatement = db.prepare<[string, number]>(
      'INSERT INTO push_counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value',
    );
    this.countersStatement = db.prepare<[], { name: string; value: number }>('SELECT name, value FROM push_counters');
    this.depthStatement = db.prepare<[], number>('SELECT count(*) FROM push_queue').pluck();
    this.registrationStatement = db.prepare<[number], { push_platform: PushPlatform | null; push_token: string | null; push_topic: string | null }>(
      'SELECT push_platform, push_token, push_topic FROM devices WHERE id = ?',
    );
  }

  /** Registers (or replaces) the device's token; the same token on any other device is removed. */
  register(deviceId: number, registration: PushRegistration): void {
    this.takeTokenStatement.run(registration.token, deviceId);
    this.setTokenStatement.run(registration.platform, registration.token, registration.topic, deviceId);
    this.forgetDeviceStatement.run(deviceId);
  }

  unregister(deviceId: number): void {
    this.clearTokenStatement.run(deviceId);
    this.forgetDeviceStatement.run(deviceId);
  }

  registration(deviceId: number): PushRegistration | undefined {
    const row = this.registrationStatement.get(deviceId);
    if (!row?.push_platform || !row.push_token) return undefined;
    return { platform: row.push_platform, token: row.push_token, topic: row.push_topic };
  }

  /** The provider said the token is dead: removed, unless the device registered a new one meanwhile. Returns whether it was removed. */
  dropToken(deviceId: number, token: string): boolean {
    const dropped = this.dropTokenStatement.run(deviceId, token).changes === 1;
    if (dropped) this.forgetDeviceStatement.run(deviceId);
    return dropped;
  }

  /** Queues a push of the message for every device that should get one (see the statement); returns how many. */
  enqueue(
    message: { readonly id: number; readonly threadId: number; readonly senderUserId: number; readonly createdAt: number },
    platforms: { readonly apns: boolean; readonly fcm: boolean },
  ): number {
    const m = message;
    return this.enqueueStatement.run(m.id, m.createdAt, m.createdAt, m.threadId, m.senderUserId, platforms.apns ? 1 : 0, platforms.fcm ? 1 : 0).changes;
  }

  /** Up to `limit` due pushes, the newest per (device, thread) only, oldest due first. */
  due(now: number, limit: number): DuePushRow[] {
    return this.dueStatement.all(now, limit);
  }

  /** When the earliest push due after `now` is due, or null when there is none. */
  nextDueAfter(now: number): number | null {
    return this.nextDueStatement.get(now) ?? null;
  }

  /** The push is settled: it and the older ones it stood for leave the queue. */
  done(push: Pick<DuePushRow, 'device_id' | 'thread_id' | 'id'>): void {
    this.doneStatement.run(push.device_id, push.thread_id, push.id);
  }

  retryAt(pushId: number, notBefore: number, error: string): void {
    this.retryStatement.run(notBefore, error.slice(0, 500), pushId);
  }

  count(counter: PushCounter, by = 1): void {
    this.bumpStatement.run(counter, by);
  }

  counts(): PushCounts {
    const values = new Map(this.countersStatement.all().map((row) => [row.name, row.value]));
    const get = (name: PushCounter): number => values.get(name) ?? 0;
    return { sent: get('sent'), failed: get('failed'), dropped_tokens: get('dropped_tokens'), skipped: get('skipped'), queued: this.depthStatement.get() ?? 0 };
  }
}
