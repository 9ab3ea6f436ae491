import type { Db } from '../database.js';
import { LARGE_THREAD_MEMBERS, type PushCounter, type PushPlatform, type PushPlatforms, type PushRegistration } from '../ports/push.js';
import { BADGE_SQL } from './badge.js';
import { byLimit } from './by-limit.js';
import type { MessageKind } from './messages.js';

export type { PushCounter, PushPlatform, PushPlatforms, PushRegistration };

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
  readonly attachments: string | null;
  readonly sender_name: string;
  readonly thread_kind: 'direct' | 'group';
  readonly thread_title: string | null;
  /** The recipient's read cursor in the thread, and whether they muted it since. */
  readonly read_seq: number;
  readonly muted: 0 | 1;
  /** The message mentions the recipient: a mention goes through mute. */
  readonly mentioned: 0 | 1;
  readonly deleted: 0 | 1;
  /** The recipient left the thread since. */
  readonly left: 0 | 1;
  /** How far the device has acknowledged the thread. */
  readonly delivered_seq: number;
}

/** A thread with news to notify of: its newest message. */
export interface PushThreadRow {
  readonly thread_id: number;
  readonly message_id: number;
  readonly sender_user_id: number;
  readonly created_at: number;
}


/**
 * 1 when the thread (an expression) has more than LARGE_THREAD_MEMBERS
 * current members, else 0: the row's lane (small threads are claimed first).
 * Stops at the first member past the bound: a bounded cost, whatever the size.
 */
function laneOf(thread: string): string {
  return `EXISTS (SELECT 1 FROM thread_members x WHERE x.thread_id = ${thread} AND x.left_seq IS NULL LIMIT 1 OFFSET ${LARGE_THREAD_MEMBERS})`;
}

/** Due and not claimed by another whose lease still runs, in `lane`, oldest due first: one range of push_queue_due. */
function dueInLane(lane: 0 | 1, limit: number): string {
  return `SELECT id FROM (SELECT id FROM push_queue
            WHERE lane = ${lane} AND not_before <= :now AND (claimed_until IS NULL OR claimed_until <= :now OR claimed_by = :claimant)
            ORDER BY not_before, id LIMIT ${limit})`;
}

export interface PushCounts {
  readonly sent: number;
  readonly failed: number;
  readonly dropped_tokens: number;
  readonly skipped: number;
  readonly queued: number;
}

/**
 * A newer message taking over a device's row for a thread starts afresh: no
 * attempts counted, and due now if the row was backing off (its wait was for
 * the older message's failures). The done() guard on message_id keeps an
 * in-flight send of the older message from settling the newer one.
 */
const TAKE_OVER = `attempts = CASE WHEN message_id <> excluded.message_id THEN 0 ELSE attempts END,
  not_before = CASE WHEN message_id <> excluded.message_id THEN min(not_before, excluded.not_before) ELSE not_before END`;

/** Push tokens of devices, the push queue and its counters. */
export class PushRepository {
  private readonly takeTokenStatement;
  private readonly setTokenStatement;
  private readonly clearTokenStatement;
  private readonly dropTokenStatement;
  private readonly noteThreadStatement;
  private readonly pendingThreadsStatement;
  private readonly expandStatement;
  private readonly expandedStatement;
  private readonly laneStatement;
  private readonly enqueueFromThreadsStatement;
  private readonly enqueueForDeviceStatement;
  private readonly queueMentionsStatement;
  private readonly claimStatement;
  private readonly dueStatement;
  private readonly nextDueStatement;
  private readonly doneStatement;
  private readonly releaseStatement;
  private readonly releaseAllStatement;
  private readonly forgetDeviceStatement;
  private readonly retryStatement;
  private readonly deferStatement;
  private readonly bumpStatement;
  private readonly countersStatement;
  private readonly depthStatement;
  private readonly registrationStatement;
  private readonly badgeStatement;

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
    this.noteThreadStatement = db.prepare<[number, number, number, number]>(
      `INSERT INTO push_threads (thread_id, message_id, sender_user_id, created_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (thread_id) DO UPDATE SET message_id = excluded.message_id, sender_user_id = excluded.sender_user_id, created_at = excluded.created_at`,
    );
    // The limits are written into the text (by-limit.ts): a bound LIMIT made SQLite plan these again at every run.
    this.pendingThreadsStatement = byLimit((limit) => db.prepare<[], PushThreadRow>(`SELECT thread_id, message_id, sender_user_id, created_at FROM push_threads LIMIT ${limit}`));
    // Every device of the other current members that has a token for a configured provider,
    // is not live and has not muted the thread; a device's pending row takes the newer message.
    this.expandStatement = db.prepare<[number, number, number, 0 | 1, number, number, 0 | 1, 0 | 1, 0 | 1]>(
      `INSERT INTO push_queue (device_id, thread_id, message_id, created_at, not_before, lane)
       SELECT d.id, m.thread_id, ?, ?, ?, ?
         FROM thread_members m JOIN devices d ON d.user_id = m.user_id
        WHERE m.thread_id = ? AND m.left_seq IS NULL AND m.muted = 0 AND m.user_id <> ?
          AND d.revoked_at IS NULL AND d.live_after IS NULL AND d.push_token IS NOT NULL
          AND ((? = 1 AND d.push_platform = 'apns') OR (? = 1 AND d.push_platform = 'fcm') OR (? = 1 AND d.push_platform = 'webpush'))
       ON CONFLICT (device_id, thread_id) DO UPDATE SET message_id = excluded.message_id, created_at = excluded.created_at, ${TAKE_OVER}`,
    );
    this.laneStatement = db.prepare<[number], 0 | 1>(`SELECT ${laneOf('?')}`).pluck();
    this.expandedStatement = db.prepare<[number, number]>('DELETE FROM push_threads WHERE thread_id = ? AND message_id = ?');
    // A device that stopped being live: a notification per thread for the newest message it got live but never acked
    // (change rows make none; in a thread the user muted, only a message that mentions them does).
    this.enqueueForDeviceStatement = db.prepare<[number, number, number, 0 | 1, 0 | 1, 0 | 1]>(
      `INSERT INTO push_queue (device_id, thread_id, message_id, created_at, not_before, lane)
       SELECT d.id, i.thread_id, max(i.message_id), max(i.created_at), ?, ${laneOf('i.thread_id')}
         FROM inbox i
         JOIN devices d ON d.id = i.device_id
         JOIN messages msg ON msg.id = i.message_id AND msg.change IS NULL
         JOIN thread_members m ON m.thread_id = i.thread_id AND m.user_id = d.user_id
        WHERE i.device_id = ? AND i.message_id > ? AND msg.sender_user_id <> d.user_id AND msg.kind <> 'system' AND msg.change IS NULL
          AND (m.muted = 0 OR EXISTS (SELECT 1 FROM json_each(msg.mentions) WHERE value = d.user_id)) AND d.push_token IS NOT NULL
          AND ((? = 1 AND d.push_platform = 'apns') OR (? = 1 AND d.push_platform = 'fcm') OR (? = 1 AND d.push_platform = 'webpush'))
        GROUP BY i.thread_id
       ON CONFLICT (device_id, thread_id) DO UPDATE SET message_id = excluded.message_id, created_at = excluded.created_at, ${TAKE_OVER}`,
    );
    // The same for the threads that write no inbox (read diffusion: more than :above current members), from
    // thread state: per current membership, the newest content message from another user the device got live
    // (after :live) and has not acked (after its delivery cursor), nor read; in a muted thread the newest that
    // mentions the user. One backwards look-up by (thread_id, seq) per thread with something unacked.
    this.enqueueFromThreadsStatement = db.prepare<{ device: number; live: number; now: number; above: number; apns: 0 | 1; fcm: 0 | 1; webpush: 0 | 1 }>(
      `INSERT INTO push_queue (device_id, thread_id, message_id, created_at, not_before, lane)
       SELECT d.id, tm.thread_id, msg.id, msg.created_at, :now, ${laneOf('tm.thread_id')}
         FROM devices d
         JOIN thread_members tm ON tm.user_id = d.user_id AND tm.left_seq IS NULL
         JOIN threads t ON t.id = tm.thread_id
         LEFT JOIN device_cursors c ON c.device_id = d.id AND c.thread_id = tm.thread_id
         JOIN messages msg ON msg.id = (
                SELECT x.id FROM messages x
                 WHERE x.thread_id = tm.thread_id AND x.seq > max(tm.joined_seq, tm.read_seq, coalesce(c.delivered_seq, 0)) AND x.id > :live
                   AND x.change IS NULL AND x.kind <> 'system' AND x.sender_user_id <> d.user_id
                   AND (tm.muted = 0 OR EXISTS (SELECT 1 FROM json_each(x.mentions) WHERE value = d.user_id))
                 ORDER BY x.seq DESC LIMIT 1)
        WHERE d.id = :device AND d.push_token IS NOT NULL
          AND ((:apns = 1 AND d.push_platform = 'apns') OR (:fcm = 1 AND d.push_platform = 'fcm') OR (:webpush = 1 AND d.push_platform = 'webpush'))
          AND t.last_seq > max(tm.joined_seq, tm.read_seq, coalesce(c.delivered_seq, 0))
          AND EXISTS (SELECT 1 FROM thread_members x WHERE x.thread_id = tm.thread_id AND x.left_seq IS NULL LIMIT 1 OFFSET :above)
       ON CONFLICT (device_id, thread_id) DO UPDATE SET message_id = excluded.message_id, created_at = excluded.created_at, ${TAKE_OVER}`,
    );
    // Mute does not silence a mention: the devices of mentioned members who muted the thread (the expansion
    // leaves them out), queued in the message's own transaction — at most 50 users, so a bounded cost — and not
    // through push_threads, whose one row per thread a later message in it would take over.
    this.queueMentionsStatement = db.prepare<{ id: number; thread: number; sender: number; now: number; mentions: string; apns: 0 | 1; fcm: 0 | 1; webpush: 0 | 1 }>(
      `INSERT INTO push_queue (device_id, thread_id, message_id, created_at, not_before)
       SELECT d.id, m.thread_id, :id, :now, :now
         FROM thread_members m JOIN devices d ON d.user_id = m.user_id
        WHERE m.thread_id = :thread AND m.muted = 1 AND m.left_seq IS NULL AND m.user_id <> :sender
          AND m.user_id IN (SELECT value FROM json_each(:mentions))
          AND d.revoked_at IS NULL AND d.live_after IS NULL AND d.push_token IS NOT NULL
          AND ((:apns = 1 AND d.push_platform = 'apns') OR (:fcm = 1 AND d.push_platform = 'fcm') OR (:webpush = 1 AND d.push_platform = 'webpush'))
       ON CONFLICT (device_id, thread_id) DO UPDATE SET message_id = excluded.message_id, created_at = excluded.created_at, ${TAKE_OVER}`,
    );
    // Due, and not claimed by another whose lease still runs.
    this.claimStatement = byLimit((limit) =>
      db.prepare<{ claimant: string; until: number; now: number }, { id: number }>(
        `UPDATE push_queue SET claimed_by = :claimant, claimed_until = :until
          WHERE id IN (${dueInLane(0, limit)} UNION ALL ${dueInLane(1, limit)} LIMIT ${limit})
         RETURNING id`,
      ),
    );
    this.dueStatement = db.prepare<[string], DuePushRow>(
      `SELECT q.id, q.device_id, q.thread_id, q.message_id, q.created_at, q.attempts,
              d.user_id, d.push_platform, d.push_token, d.push_topic,
              d.live_after IS NOT NULL AS device_live, d.revoked_at IS NOT NULL AS device_revoked,
              msg.seq, msg.kind, msg.body, msg.attachments, u.display_name AS sender_name,
              t.kind AS thread_kind, t.title AS thread_title,
              coalesce(tm.read_seq, 0) AS read_seq, coalesce(tm.muted, 0) AS muted,
              EXISTS (SELECT 1 FROM json_each(msg.mentions) WHERE value = d.user_id) AS mentioned,
              msg.deleted_at IS NOT NULL AS deleted,
              tm.left_seq IS NOT NULL AS left, coalesce(c.delivered_seq, 0) AS delivered_seq
         FROM push_queue q
         JOIN devices d ON d.id = q.device_id
         JOIN messages msg ON msg.id = q.message_id
         JOIN users u ON u.id = msg.sender_user_id
         JOIN threads t ON t.id = q.thread_id
         LEFT JOIN thread_members tm ON tm.thread_id = q.thread_id AND tm.user_id = d.user_id
         LEFT JOIN device_cursors c ON c.device_id = q.device_id AND c.thread_id = q.thread_id
        WHERE q.id IN (SELECT value FROM json_each(?))
        ORDER BY q.lane, q.not_before, q.id`,
    );
    // Index lookups: the next not_before of the unclaimed rows in each lane, the next end of a claim.
    this.nextDueStatement = db
      .prepare<{ now: number }, number | null>(
        `SELECT min(due) FROM (
           SELECT min(not_before) AS due FROM push_queue WHERE lane = 0 AND not_before > :now AND (claimed_until IS NULL OR claimed_until <= :now)
           UNION ALL
           SELECT min(not_before) FROM push_queue WHERE lane = 1 AND not_before > :now AND (claimed_until IS NULL OR claimed_until <= :now)
           UNION ALL
           SELECT min(max(not_before, claimed_until)) FROM push_queue WHERE claimed_until > :now)`,
      )
      .pluck();
    // Unless a newer message took the row meanwhile: that one is still to go.
    this.doneStatement = db.prepare<[number, number]>('DELETE FROM push_queue WHERE id = ? AND message_id = ?');
    this.releaseStatement = db.prepare<[number, string]>('UPDATE push_queue SET claimed_by = NULL, claimed_until = NULL WHERE id = ? AND claimed_by = ?');
    this.releaseAllStatement = db.prepare<[string]>('UPDATE push_queue SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = ?');
    this.forgetDeviceStatement = db.prepare<[number]>('DELETE FROM push_queue WHERE device_id = ?');
    this.retryStatement = db.prepare<[number, string, number]>(
      'UPDATE push_queue SET attempts = attempts + 1, not_before = ?, last_error = ?, claimed_by = NULL, claimed_until = NULL WHERE id = ?',
    );
    this.deferStatement = db.prepare<[number, string]>(
      'UPDATE push_queue SET not_before = max(not_before, ?), claimed_by = NULL, claimed_until = NULL WHERE id IN (SELECT value FROM json_each(?))',
    );
    this.bumpStatement = db.prepare<[string, number]>(
      'INSERT INTO push_counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value',
    );
    this.countersStatement = db.prepare<[], { name: string; value: number }>('SELECT name, value FROM push_counters');
    this.depthStatement = db.prepare<[], number>('SELECT (SELECT count(*) FROM push_queue) + (SELECT count(*) FROM push_threads)').pluck();
    this.registrationStatement = db.prepare<[number], { push_platform: PushPlatform | null; push_token: string | null; push_topic: string | null }>(
      'SELECT push_platform, push_token, push_topic FROM devices WHERE id = ?',
    );
    this.badgeStatement = db.prepare<[number], number>(BADGE_SQL).pluck();
  }

  /** The user's badge: unread over their threads, muted ones left out (see badge.ts). */
  badge(userId: number): number {
    return this.badgeStatement.get(userId) ?? 0;
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

  /** The thread has a new message to notify of (in the message's transaction: one row per thread, whatever its size). */
  noteThread(message: { readonly id: number; readonly threadId: number; readonly senderUserId: number; readonly createdAt: number }): void {
    this.noteThreadStatement.run(message.threadId, message.id, message.senderUserId, message.createdAt);
  }

  /**
   * In the message's transaction: the devices of the mentioned users (`mentionsJson`, a JSON array of ids) who muted the
   * thread get a notification queued now (the others hear of it through the
   * thread's expansion, which leaves muted members out).
   */
  queueMentions(
    message: { readonly id: number; readonly threadId: number; readonly senderUserId: number; readonly createdAt: number },
    mentionsJson: string,
    platforms: PushPlatforms,
  ): void {
    if (mentionsJson === '[]') return;
    this.queueMentionsStatement.run({
      id: message.id,
      thread: message.threadId,
      sender: message.senderUserId,
      now: message.createdAt,
      mentions: mentionsJson,
      apns: platforms.apns ? 1 : 0,
      fcm: platforms.fcm ? 1 : 0,
      webpush: platforms.webpush ? 1 : 0,
    });
  }

  pendingThreads(limit: number): PushThreadRow[] {
    return this.pendingThreadsStatement(limit).all();
  }

  /** Turns a thread's news into a queued notification per device that should get one. */
  expand(thread: PushThreadRow, now: number, platforms: PushPlatforms): void {
    const lane = this.laneStatement.get(thread.thread_id) ?? 0;
    this.expandStatement.run(thread.message_id, thread.created_at, now, lane, thread.thread_id, thread.sender_user_id, ...platformFlags(platforms));
    this.expandedStatement.run(thread.thread_id, thread.message_id);
  }

  /**
   * Queues notifications for what a device got live after message `liveAfter` and never acked (it just went
   * offline): from its inbox rows in the threads that write them, from thread state in those of more than
   * `readDiffusionAbove` members (the going offline wrote no inbox rows there).
   */
  enqueueUnacked(deviceId: number, liveAfter: number, now: number, platforms: PushPlatforms, readDiffusionAbove: number): void {
    const [apns, fcm, webpush] = platformFlags(platforms);
    this.enqueueForDeviceStatement.run(now, deviceId, liveAfter, apns, fcm, webpush);
    this.enqueueFromThreadsStatement.run({ device: deviceId, live: liveAfter, now, above: readDiffusionAbove, apns, fcm, webpush });
  }

  /** Claims up to `limit` due pushes (one per device and thread), small threads' first, oldest due first, for `claimant` until `until`; returns them. */
  claimDue(claimant: string, now: number, until: number, limit: number): DuePushRow[] {
    const ids = this.claimStatement(limit).all({ claimant, until, now }).map((row) => row.id);
    return ids.length === 0 ? [] : this.dueStatement.all(JSON.stringify(ids));
  }

  /** When the earliest push not due at `now` becomes due (its not_before, or the end of a claim), or null when none will. */
  nextDueAfter(now: number): number | null {
    return this.nextDueStatement.get({ now }) ?? null;
  }

  /**
   * The push is settled: it leaves the queue, unless a newer message of the
   * thread took its row meanwhile; then `claimant`'s claim is released, so
   * that the newer one goes out. Returns whether it left.
   */
  done(push: Pick<DuePushRow, 'id' | 'message_id'>, claimant: string): boolean {
    if (this.doneStatement.run(push.id, push.message_id).changes === 1) return true;
    this.releaseStatement.run(push.id, claimant);
    return false;
  }

  /** Every claim of `claimant` ends (a clean stop). */
  releaseClaims(claimant: string): void {
    this.releaseAllStatement.run(claimant);
  }

  retryAt(pushId: number, notBefore: number, error: string): void {
    this.retryStatement.run(notBefore, error.slice(0, 500), pushId);
  }

  /** Due again at `notBefore` (a paused provider), attempts kept. */
  defer(pushIds: readonly number[], notBefore: number): void {
    this.deferStatement.run(notBefore, JSON.stringify(pushIds));
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

/** The statements' apns, fcm and webpush parameters, in that order. */
function platformFlags(platforms: PushPlatforms): [0 | 1, 0 | 1, 0 | 1] {
  return [platforms.apns ? 1 : 0, platforms.fcm ? 1 : 0, platforms.webpush ? 1 : 0];
}
