import { UPLOAD_COLUMNS, type UploadRecord, blobsOf, toUploadRow } from '../attachment-rows.js';
import type {
  AttachmentStats,
  AttachmentStorage,
  CollectedUploads,
  CompletedBlob,
  CreateUploadOutcome,
  NewUpload,
  UploadRow,
} from '../ports/attachments.js';
import type { PgDatabase } from './database.js';
import type { Sql } from './sql.js';

/** Namespace of the advisory locks on a user's quota (the other key is the user id's hash). */
const QUOTA_LOCKS = 0x71756f74;

/** visibleRange (ports/visibility.ts) in SQL: a ref's seq in (joined_seq, left_seq ?? last seq]; `$1` is the reader. */
const READABLE = `(u.user_id = $1
  OR EXISTS (SELECT 1 FROM attachment_refs r JOIN thread_members m ON m.thread_id = r.thread_id AND m.user_id = $1
              WHERE r.upload_id = u.id AND r.seq > m.joined_seq AND (m.left_seq IS NULL OR r.seq <= m.left_seq)))`;

/** The blobs of the array `$1` that no upload outside the ids `$2` names (as file or thumbnail). */
const LEFT_UNNAMED = `SELECT h AS sha256 FROM unnest($1::text[]) h
  WHERE NOT EXISTS (SELECT 1 FROM uploads WHERE sha256 = h AND id <> ALL($2::text[]))
    AND NOT EXISTS (SELECT 1 FROM uploads WHERE thumb_sha256 = h AND id <> ALL($2::text[]))
  ORDER BY h`;

/** What collection may remove: `$1` now, `$2` completed before (now - grace). Refs are checked again under the rows' locks. */
const COLLECTABLE = `((u.completed_at IS NULL AND u.expires_at <= $1) OR u.completed_at < $2)
  AND NOT EXISTS (SELECT 1 FROM attachment_refs r WHERE r.upload_id = u.id)`;

/**
 * AttachmentStorage on PostgreSQL: each write a plain unit of the node's
 * PgWriteBatcher, reads direct. Several nodes share the database, so the
 * units that decide on rows another node may change lock them first:
 * createUpload the user's quota (an advisory lock: two creates of one user on
 * two nodes run one after the other, so they cannot both pass the quota),
 * deleteUpload and collect the upload rows (FOR UPDATE: a message's
 * attachment_refs insert, whose foreign key takes KEY SHARE on the row, waits
 * for them or they for it, and the refs are checked again after the lock).
 */
export class PostgresAttachmentStorage implements AttachmentStorage {
  constructor(private readonly db: PgDatabase) {}

  createUpload(input: NewUpload, quotaBytes: number): Promise<CreateUploadOutcome> {
    return this.db.writes.submit(async (sql): Promise<CreateUploadOutcome> => {
      await sql.query('SELECT pg_advisory_xact_lock($1, hashint8($2::bigint))', [QUOTA_LOCKS, input.userId]);
      // Read after the lock: under READ COMMITTED this statement sees what the lock's last holder committed.
      const usedBytes = await usedBytesOf(sql, input.userId, input.now);
      if (usedBytes + input.length > quotaBytes) return { kind: 'over_quota', usedBytes };
      await sql.query(
        `INSERT INTO uploads (id, user_id, device_id, length, name, declared_type, encrypted, keep_metadata, duration_ms, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
        [input.id, input.userId, input.deviceId, input.length, input.name, input.declaredType, input.encrypted, input.keepMetadata, input.durationMs, input.now, input.expiresAt],
      );
      return { kind: 'created' };
    });
  }

  async upload(id: string): Promise<UploadRow | undefined> {
    const { rows } = await this.db.read.query<UploadRecord>(`SELECT ${UPLOAD_COLUMNS} FROM uploads u WHERE u.id = $1`, [id]);
    return rows[0] && toUploadRow(rows[0]);
  }

  completeUpload(id: string, blob: CompletedBlob, now: number): Promise<boolean> {
    return this.db.writes.submit(async (sql) => {
      const { rowCount } = await sql.query(
        `UPDATE uploads SET completed_at = $2, sha256 = $3, size = $4, mime = $5, width = $6, height = $7, thumb_sha256 = $8, thumb_width = $9, thumb_height = $10
          WHERE id = $1`,
        [id, now, blob.sha256, blob.size, blob.mime, blob.width, blob.height, blob.thumbnail?.sha256 ?? null, blob.thumbnail?.width ?? null, blob.thumbnail?.height ?? null],
      );
      if (rowCount !== 1) return false;
      await sql.query('DELETE FROM blob_orphans WHERE sha256 = ANY($1::text[])', [[blob.sha256, ...(blob.thumbnail ? [blob.thumbnail.sha256] : [])]]);
      return true;
    });
  }

  deleteUpload(id: string, now: number): Promise<'deleted' | 'referenced' | 'missing'> {
    return this.db.writes.submit(async (sql) => {
      const { rows } = await sql.query<UploadRecord>(`SELECT ${UPLOAD_COLUMNS} FROM uploads u WHERE u.id = $1 FOR UPDATE`, [id]);
      const record = rows[0];
      if (!record) return 'missing';
      // A statement after the lock: it sees a ref committed by a send that held the row before.
      if ((await sql.query('SELECT 1 FROM attachment_refs WHERE upload_id = $1 LIMIT 1', [id])).rowCount > 0) return 'referenced';
      await sql.query('DELETE FROM uploads WHERE id = $1', [id]);
      await orphanUnnamed(sql, blobsOf(record), [id], now);
      return 'deleted';
    });
  }

  async canRead(userId: number, uploadId: string): Promise<boolean> {
    const { rowCount } = await this.db.read.query(`SELECT 1 FROM uploads u WHERE u.id = $2 AND ${READABLE}`, [userId, uploadId]);
    return rowCount > 0;
  }

  async attachable(userId: number, ids: readonly string[]): Promise<ReadonlyMap<string, UploadRow>> {
    if (ids.length === 0) return new Map();
    const { rows } = await this.db.read.query<UploadRecord>(
      `SELECT ${UPLOAD_COLUMNS} FROM uploads u WHERE u.id = ANY($2::text[]) AND u.completed_at IS NOT NULL AND ${READABLE}`,
      [userId, [...new Set(ids)]],
    );
    return new Map(rows.map((record) => [record.id, toUploadRow(record)]));
  }

  usedBytes(userId: number, now: number): Promise<number> {
    return usedBytesOf(this.db.read, userId, now);
  }

  collect(now: number, graceMs: number, dryRun: boolean): Promise<CollectedUploads> {
    if (dryRun) {
      return this.db.snapshot(async (sql) => {
        const { rows } = await sql.query<CollectedRow>(`SELECT u.id, u.completed_at IS NULL AS incomplete, u.sha256, u.thumb_sha256 FROM uploads u WHERE ${COLLECTABLE} ORDER BY u.id`, [
          now,
          now - graceMs,
        ]);
        return collected(rows, await leftUnnamed(sql, rows));
      });
    }
    return this.db.writes.submit(async (sql) => {
      // Rows a send (or another node's collection) holds are skipped: the next pass looks at them again.
      const locked = await sql.query<{ id: string }>(`SELECT u.id FROM uploads u WHERE ${COLLECTABLE} ORDER BY u.id FOR UPDATE SKIP LOCKED`, [now, now - graceMs]);
      if (locked.rowCount === 0) return collected([], []);
      const { rows } = await sql.query<CollectedRow>(
        `DELETE FROM uploads u WHERE u.id = ANY($1::text[]) AND NOT EXISTS (SELECT 1 FROM attachment_refs r WHERE r.upload_id = u.id)
         RETURNING u.id, u.completed_at IS NULL AS incomplete, u.sha256, u.thumb_sha256`,
        [locked.rows.map((row) => row.id)],
      );
      rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      const orphaned = await orphanUnnamed(sql, rows.flatMap(blobsOf), [], now);
      // A completion on another node may have named a blob again after it was recorded as an orphan.
      await sql.query(
        `DELETE FROM blob_orphans o WHERE EXISTS (SELECT 1 FROM uploads WHERE sha256 = o.sha256) OR EXISTS (SELECT 1 FROM uploads WHERE thumb_sha256 = o.sha256)`,
      );
      return collected(rows, orphaned);
    });
  }

  async orphansDue(now: number, graceMs: number): Promise<readonly string[]> {
    const { rows } = await this.db.read.query<{ sha256: string }>(
      `SELECT o.sha256 FROM blob_orphans o
        WHERE o.since < $1
          AND NOT EXISTS (SELECT 1 FROM uploads WHERE sha256 = o.sha256)
          AND NOT EXISTS (SELECT 1 FROM uploads WHERE thumb_sha256 = o.sha256)
        ORDER BY o.since, o.sha256`,
      [now - graceMs],
    );
    return rows.map((row) => row.sha256);
  }

  async forgetOrphans(sha256s: readonly string[]): Promise<void> {
    if (sha256s.length === 0) return;
    await this.db.writes.submit((sql) => sql.query('DELETE FROM blob_orphans WHERE sha256 = ANY($1::text[])', [sha256s]));
  }

  async blobNamed(sha256: string): Promise<boolean> {
    const { rowCount } = await this.db.read.query('SELECT 1 FROM uploads WHERE sha256 = $1 UNION ALL SELECT 1 FROM uploads WHERE thumb_sha256 = $1 LIMIT 1', [sha256]);
    return rowCount > 0;
  }

  async namedBlobs(sha256s: readonly string[]): Promise<ReadonlySet<string>> {
    if (sha256s.length === 0) return new Set();
    const { rows } = await this.db.read.query<{ sha256: string }>(
      `SELECT sha256 FROM uploads WHERE sha256 = ANY($1::text[])
       UNION SELECT thumb_sha256 FROM uploads WHERE thumb_sha256 = ANY($1::text[])`,
      [sha256s],
    );
    return new Set(rows.map((row) => row.sha256));
  }

  async stats(): Promise<AttachmentStats> {
    const { rows } = await this.db.read.query<{ uploads: number; incomplete: number; blobs: number; blob_bytes: number; uploaded_bytes: number }>(
      `SELECT (SELECT count(*) FROM uploads) AS uploads,
              (SELECT count(*) FROM uploads WHERE completed_at IS NULL) AS incomplete,
              (SELECT count(*) FROM (SELECT sha256 FROM uploads WHERE sha256 IS NOT NULL
                                     UNION SELECT thumb_sha256 FROM uploads WHERE thumb_sha256 IS NOT NULL) b) AS blobs,
              (SELECT coalesce(sum(size), 0)::bigint FROM (SELECT max(size) AS size FROM uploads WHERE sha256 IS NOT NULL GROUP BY sha256) s) AS blob_bytes,
              (SELECT coalesce(sum(size), 0)::bigint FROM uploads WHERE completed_at IS NOT NULL) AS uploaded_bytes`,
    );
    const row = rows[0] as { uploads: number; incomplete: number; blobs: number; blob_bytes: number; uploaded_bytes: number };
    return { uploads: row.uploads, incompleteUploads: row.incomplete, blobs: row.blobs, blobBytes: row.blob_bytes, uploadedBytes: row.uploaded_bytes };
  }

  async secret(name: string, make: () => Uint8Array): Promise<Uint8Array> {
    const stored = await this.db.read.query<{ value: Buffer }>('SELECT value FROM server_secrets WHERE name = $1', [name]);
    if (stored.rows[0]) return new Uint8Array(stored.rows[0].value);
    const value = make();
    // Insert-if-absent, then read in a statement of its own: under READ COMMITTED it sees the row of a node that won the race.
    const kept = await this.db.writes.submit(async (sql) => {
      await sql.query('INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [name, Buffer.from(value.buffer, value.byteOffset, value.byteLength)]);
      return (await sql.query<{ value: Buffer }>('SELECT value FROM server_secrets WHERE name = $1', [name])).rows[0]?.value as Buffer;
    });
    return new Uint8Array(kept);
  }
}

type CollectedRow = Pick<UploadRecord, 'id' | 'sha256' | 'thumb_sha256'> & { readonly incomplete: boolean };

function collected(rows: readonly CollectedRow[], orphanedBlobs: readonly string[]): CollectedUploads {
  return {
    incomplete: rows.filter((row) => row.incomplete).map((row) => row.id),
    unreferenced: rows.filter((row) => !row.incomplete).map((row) => row.id),
    orphanedBlobs,
  };
}

async function usedBytesOf(sql: Sql, userId: number, now: number): Promise<number> {
  // A complete upload counts by what is stored, an incomplete one by what the client announced.
  const { rows } = await sql.query<{ used: number }>(
    'SELECT coalesce(sum(coalesce(size, length)), 0)::bigint AS used FROM uploads WHERE user_id = $1 AND (completed_at IS NOT NULL OR expires_at > $2)',
    [userId, now],
  );
  return rows[0]?.used ?? 0;
}

/** In a dry run: the blobs of `rows` that no upload outside them names. */
async function leftUnnamed(sql: Sql, rows: readonly CollectedRow[]): Promise<string[]> {
  const hashes = [...new Set(rows.flatMap(blobsOf))];
  if (hashes.length === 0) return [];
  const { rows: unnamed } = await sql.query<{ sha256: string }>(LEFT_UNNAMED, [hashes, rows.map((row) => row.id)]);
  return unnamed.map((row) => row.sha256);
}

/** After uploads went: records those of `hashes` no upload (but those of `ignoring`) names as orphans since `now`; returns them. */
async function orphanUnnamed(sql: Sql, hashes: readonly string[], ignoring: readonly string[], now: number): Promise<string[]> {
  const distinct = [...new Set(hashes)];
  if (distinct.length === 0) return [];
  const { rows } = await sql.query<{ sha256: string }>(LEFT_UNNAMED, [distinct, ignoring]);
  const orphans = rows.map((row) => row.sha256);
  // An older record of the same orphan keeps its time: the grace runs from when the blob was first left unnamed.
  if (orphans.length > 0) await sql.query('INSERT INTO blob_orphans (sha256, since) SELECT unnest($1::text[]), $2 ON CONFLICT DO NOTHING', [orphans, now]);
  return orphans;
}
