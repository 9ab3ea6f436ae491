import { randomUUID } from 'node:crypto';
import type { PushCounts } from '../ports/admin.js';
import { type DuePush, type PushClaimant, type PushCounter, type PushPlatform, type PushPlatforms, type PushQueueStorage, type PushRegistration, type PushTokensStorage, type QueuedPush, anyPushPlatform } from '../ports/push.js';
import type { NewMessage } from './append.js';
import type { PgDatabase } from './database.js';
import type { Sql } from './sql.js';

/** PushTokensStorage on PostgreSQL: one token belongs to one device. */
export class PostgresPushTokensStorage implements PushTokensStorage {
  constructor(private readonly db: PgDatabase) {}

  async registerPushToken(deviceId: number, registration: PushRegistration): Promise<void> {
    await this.db.writes.submit(async (sql) => {
      // Another node registering the same token for another device at once: the rows are locked in id order
      // (both statements below touch the two devices), so one waits for the other and the last one keeps it.
      await sql.query('SELECT id FROM devices WHERE (id = $1 OR push_token = $2) ORDER BY id FOR NO KEY UPDATE', [deviceId, registration.token]);
      await sql.query('UPDATE devices SET push_platform = NULL, push_token = NULL, push_topic = NULL WHERE push_token = $1 AND id <> $2', [registration.token, deviceId]);
      await sql.query('UPDATE devices SET push_platform = $1, push_token = $2, push_topic = $3 WHERE id = $4', [registration.platform, registration.token, registration.topic, deviceId]);
      await sql.query('DELETE FROM push_queue WHERE device_id = $1', [deviceId]);
    });
  }

  async unregisterPushToken(deviceId: number): Promise<void> {
    await this.db.writes.submit(async (sql) => {
      await sql.query('UPDATE devices SET push_platform = NULL, push_token = NULL, push_topic = NULL WHERE id = $1', [deviceId]);
      await sql.query('DELETE FROM push_queue WHERE device_id = $1', [deviceId]);
    });
  }

  pushRegistration(deviceId: number): Promise<PushRegistration | undefined> {
    return pushRegistration(this.db.read, deviceId);
  }
}

/** The device's registration now, if it has one. */
export async function pushRegistration(sql: Sql, deviceId: number): Promise<PushRegistration | undefined> {
  const { rows } = await sql.query<{ push_platform: PushPlatform | null; push_token: string | null; push_topic: string | null }>(
    'SELECT push_platform, push_token, push_topic FROM devices WHERE id = $1',
    [deviceId],
  );
  const row = rows[0];
  if (!row?.push_platform || !row.push_token) return undefined;
  return { platform: row.push_platform, token: row.push_token, topic: row.push_topic };
}

/** Inside a unit: the provider said the token is dead; removed (with the device's queued rows) unless the device registered another meanwhile. */
export async function dropPushToken(sql: Sql, deviceId: number, token: string): Promise<boolean> {
  await lockDeviceRow(sql, deviceId);
  const dropped = await sql.query('UPDATE devices SET push_platform = NULL, push_token = NULL, push_topic = NULL WHERE id = $1 AND push_token = $2', [deviceId, token]);
  if (dropped.rowCount !== 1) return false;
  await sql.query('DELETE FROM push_queue WHERE device_id = $1', [deviceId]);
  return true;
}

// Mute does not silence a mention: the devices of mentioned members who muted the thread (the expansion leaves
// them out). One row per device and thread, the newest mention's (two in one batch would make the upsert touch
// a row twice); locked in key order. Never an older message over a newer one (another node may have queued it).
const QUEUE_MENTIONS = `
INSERT INTO push_queue (device_id, thread_id, message_id, created_at, not_before)
SELECT DISTINCT ON (d.id, p.thread_id) d.id, p.thread_id, p.message_id, p.created_at, p.created_at
  FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[]) AS p(message_id, thread_id, sender_user_id, created_at, mentions)
  JOIN thread_members m ON m.thread_id = p.thread_id
   AND m.user_id IN (SELECT value::bigint FROM jsonb_array_elements_text(p.mentions::jsonb))
  JOIN devices d ON d.user_id = m.user_id
 WHERE m.muted AND m.left_seq IS NULL AND m.user_id <> p.sender_user_id
   AND d.revoked_at IS NULL AND d.live_after IS NULL AND d.push_token IS NOT NULL
   AND (($6 AND d.push_platform = 'apns') OR ($7 AND d.push_platform = 'fcm') OR ($8 AND d.push_platform = 'webpush'))
 ORDER BY d.id, p.thread_id, p.message_id DESC
ON CONFLICT (device_id, thread_id) DO UPDATE SET message_id = excluded.message_id, created_at = excluded.created_at
 WHERE push_queue.message_id < excluded.message_id`;

/**
 * Inside the messages' unit, as its LAST write on push rows (after the
 * thread's push_threads row and the recipient devices are locked: the order
 * every unit that takes these follows): the mentions of the batch's content
 * messages queue notifications for members who muted the thread. No query
 * when none mentions anyone. At most 50 users per message: a bounded cost.
 */
export async function queueMentionPushes(sql: Sql, platforms: PushPlatforms, messages: readonly NewMessage[], ids: readonly number[]): Promise<void> {
  if (!anyPushPlatform(platforms)) return;
  // Content messages that mention someone (change rows push nobody; system messages mention nobody).
  const mentioning = messages.flatMap((m, index) => (m.change || m.kind === 'system' || !m.mentionsJson || m.mentionsJson === '[]' ? [] : [{ m, id: ids[index] as number }]));
  if (mentioning.length === 0) return;
  await sql.query(QUEUE_MENTIONS, [
    mentioning.map(({ id }) => id),
    mentioning.map(({ m }) => m.threadId),
    mentioning.map(({ m }) => m.senderUserId),
    mentioning.map(({ m }) => m.now),
    mentioning.map(({ m }) => m.mentionsJson),
    platforms.apns,
    platforms.fcm,
    platforms.webpush === true,
  ]);
}

export async function pushCounts(sql: Sql): Promise<PushCounts> {
  const { rows } = await sql.query<{ name: string; value: number }>(
    `SELECT name, value FROM push_counters
     UNION ALL SELECT '', (SELECT count(*) FROM push_queue) + (SELECT count(*) FROM push_threads)`,
  );
  const values = new Map(rows.map((row) => [row.name, row.value]));
  const get = (name: string): number => values.get(name) ?? 0;
  return { sent: get('sent'), failed: get('failed'), droppedTokens: get('dropped_tokens'), skipped: get('skipped'), queued: get('') };
}

/**
 * The device row before its queued rows, as the message path takes them (it
 * locks recipient devices, then queues mentions): the other order could
 * deadlock with a message that mentions the device's user.
 */
async function lockDeviceRow(sql: Sql, deviceId: number): Promise<void> {
  await sql.query('SELECT id FROM devices WHERE id = $1 FOR NO KEY UPDATE', [deviceId]);
}

async function count(sql: Sql, counter: PushCounter): Promise<void> {
  await sql.query('INSERT INTO push_counters (name, value) VALUES ($1, 1) ON CONFLICT (name) DO UPDATE SET value = push_counters.value + 1', [counter]);
}

/** What a due notification needs of its device, message, thread and recipient, joined to the claimed rows `q`. */
const DUE_COLUMNS = `q.id, q.device_id, q.thread_id, q.message_id, q.created_at, q.attempts,
       d.user_id, d.push_platform, d.push_token, d.push_topic,
       d.live_after IS NOT NULL AS device_live, d.revoked_at IS NOT NULL AS device_revoked,
       msg.seq, msg.kind, msg.body, msg.attachments, u.display_name AS sender_name,
       t.kind AS thread_kind, t.title AS thread_title,
       coalesce(tm.read_seq, 0) AS read_seq, coalesce(tm.muted, false) AS muted,
       coalesce(msg.mentions::jsonb @> to_jsonb(d.user_id), false) AS mentioned,
       msg.deleted_at IS NOT NULL AS deleted,
       tm.left_seq IS NOT NULL AS left, coalesce(c.delivered_seq, 0) AS delivered_seq`;
const DUE_JOINS = `JOIN devices d ON d.id = q.device_id
  JOIN messages msg ON msg.id = q.message_id
  JOIN users u ON u.id = msg.sender_user_id
  JOIN threads t ON t.id = q.thread_id
  LEFT JOIN thread_members tm ON tm.thread_id = q.thread_id AND tm.user_id = d.user_id
  LEFT JOIN device_cursors c ON c.device_id = q.device_id AND c.thread_id = q.thread_id`;

interface DuePushRow {
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
  readonly device_live: boolean;
  readonly device_revoked: boolean;
  readonly seq: number;
  readonly kind: DuePush['kind'];
  readonly body: string;
  readonly attachments: string | null;
  readonly sender_name: string;
  readonly thread_kind: DuePush['threadKind'];
  readonly thread_title: string | null;
  readonly read_seq: number;
  readonly muted: boolean;
  readonly mentioned: boolean;
  readonly deleted: boolean;
  readonly left: boolean;
  readonly delivered_seq: number;
  readonly [column: string]: unknown;
}

function toDuePush(row: DuePushRow): DuePush {
  return {
    id: row.id,
    deviceId: row.device_id,
    threadId: row.thread_id,
    messageId: row.message_id,
    createdAt: row.created_at,
    attempts: row.attempts,
    userId: row.user_id,
    pushPlatform: row.push_platform,
    pushToken: row.push_token,
    pushTopic: row.push_topic,
    deviceLive: row.device_live,
    deviceRevoked: row.device_revoked,
    seq: row.seq,
    kind: row.kind,
    body: row.body,
    attachments: row.attachments,
    senderName: row.sender_name,
    threadKind: row.thread_kind,
    threadTitle: row.thread_title,
    readSeq: row.read_seq,
    muted: row.muted,
    mentioned: row.mentioned,
    deleted: row.deleted,
    left: row.left,
    deliveredSeq: row.delivered_seq,
  };
}

/**
 * The push queue on PostgreSQL, worked by every node's dispatcher at once.
 * Each object is one claimant: a claim takes due rows with FOR UPDATE SKIP
 * LOCKED (nodes claiming at the same moment take different rows, none waits)
 * and marks them claimed until `now + leaseMs`; a row whose claim runs out
 * (its node died) is due again for everyone, and a node's own claims are due
 * again for it (restarted under the same name, it takes them back at once).
 */
export class PostgresPushQueueStorage implements PushQueueStorage {
  private readonly claimant: string;

  /** `claimant`: the node's name (stable across restarts); by default a random one, whose claims a restart leaves to the lease. */
  constructor(
    private readonly db: PgDatabase,
    options: PushClaimant = {},
  ) {
    this.claimant = options.claimant ?? randomUUID();
  }

  /**
   * One statement: the threads with news (SKIP LOCKED: another node expands
   * the others) become a row per device that should hear of them, and leave
   * push_threads unless a newer message replaced them meanwhile. A device's
   * pending row takes the newer message (never an older one: a late
   * expansion does not move it back).
   */
  expandPending(input: { limit: number; now: number; platforms: PushPlatforms }): Promise<number> {
    return this.db.writes.submit(async (sql) => {
      const { rows } = await sql.query<{ expanded: number }>(
        `WITH picked AS (
           SELECT thread_id, message_id, sender_user_id, created_at FROM push_threads
            ORDER BY thread_id LIMIT $1 FOR UPDATE SKIP LOCKED),
         queued AS (
           INSERT INTO push_queue (device_id, thread_id, message_id, created_at, not_before)
           SELECT d.id, p.thread_id, p.message_id, p.created_at, $2
             FROM picked p
             JOIN thread_members m ON m.thread_id = p.thread_id
             JOIN devices d ON d.user_id = m.user_id
            WHERE m.left_seq IS NULL AND NOT m.muted AND m.user_id <> p.sender_user_id
              AND d.revoked_at IS NULL AND d.live_after IS NULL AND d.push_token IS NOT NULL
              AND (($3 AND d.push_platform = 'apns') OR ($4 AND d.push_platform = 'fcm') OR ($5 AND d.push_platform = 'webpush'))
           ON CONFLICT (device_id, thread_id) DO UPDATE SET message_id = excluded.message_id, created_at = excluded.created_at
            WHERE push_queue.message_id < excluded.message_id),
         expanded AS (
           DELETE FROM push_threads w USING picked p WHERE w.thread_id = p.thread_id AND w.message_id = p.message_id)
         SELECT count(*) AS expanded FROM picked`,
        [input.limit, input.now, input.platforms.apns, input.platforms.fcm, input.platforms.webpush === true],
      );
      return rows[0]?.expanded ?? 0;
    });
  }

  claimDuePushes(input: { now: number; limit: number; leaseMs: number }): Promise<DuePush[]> {
    return this.db.writes.submit(async (sql) => {
      const { rows } = await sql.query<DuePushRow>(
        `WITH due AS (
           SELECT id FROM push_queue
            WHERE not_before <= $1 AND (claimed_until IS NULL OR claimed_until <= $1 OR claimed_by = $3)
            ORDER BY not_before, id LIMIT $2 FOR UPDATE SKIP LOCKED),
         q AS (
           UPDATE push_queue SET claimed_by = $3, claimed_until = $4 FROM due WHERE push_queue.id = due.id
           RETURNING push_queue.*)
         SELECT ${DUE_COLUMNS} FROM q ${DUE_JOINS}
          ORDER BY q.not_before, q.id`,
        [input.now, input.limit, this.claimant, input.now + input.leaseMs],
      );
      return rows.map(toDuePush);
    });
  }

  async nextDueAfter(now: number): Promise<number | null> {
    const { rows } = await this.db.read.query<{ due: number | null }>(
      `SELECT least(
         (SELECT min(not_before) FROM push_queue WHERE not_before > $1 AND (claimed_until IS NULL OR claimed_until <= $1)),
         (SELECT min(greatest(not_before, claimed_until)) FROM push_queue WHERE claimed_until > $1)) AS due`,
      [now],
    );
    return rows[0]?.due ?? null;
  }

  async settlePush(push: QueuedPush, counter: PushCounter): Promise<void> {
    await this.db.writes.submit(async (sql) => {
      await this.done(sql, push);
      await count(sql, counter);
    });
  }

  async dropDeadToken(push: QueuedPush, token: string): Promise<void> {
    await this.db.writes.submit(async (sql) => {
      await lockDeviceRow(sql, push.deviceId);
      await this.done(sql, push);
      if (await dropPushToken(sql, push.deviceId, token)) await count(sql, 'dropped_tokens');
    });
  }

  async retryPush(pushId: number, notBefore: number, error: string): Promise<void> {
    await this.db.writes.submit((sql) =>
      sql.query('UPDATE push_queue SET attempts = attempts + 1, not_before = $1, last_error = $2, claimed_by = NULL, claimed_until = NULL WHERE id = $3', [
        notBefore,
        error.slice(0, 500),
        pushId,
      ]),
    );
  }

  async releaseClaims(): Promise<void> {
    await this.db.writes.submit((sql) => sql.query('UPDATE push_queue SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = $1', [this.claimant]));
  }

  /** The row leaves unless a newer message took it meanwhile; then this claim ends, so that the newer one goes out. */
  private async done(sql: Sql, push: QueuedPush): Promise<void> {
    const deleted = await sql.query('DELETE FROM push_queue WHERE id = $1 AND message_id = $2', [push.id, push.messageId]);
    if (deleted.rowCount === 0) await sql.query('UPDATE push_queue SET claimed_by = NULL, claimed_until = NULL WHERE id = $1 AND claimed_by = $2', [push.id, this.claimant]);
  }
}
