import { UPLOAD_COLUMNS, type UploadRecord } from '../attachment-rows.js';
import type { Db } from '../database.js';
import type { CompletedBlob, NewUpload } from '../ports/attachments.js';

/** Upload ids in a unit of collection, with the blobs they name. */
export type UploadBlobs = Pick<UploadRecord, 'id' | 'sha256' | 'thumb_sha256'>;

/**
 * The attachment tables on SQLite (migration 0014): uploads, blob_orphans,
 * server_secrets, and the reads of attachment_refs (appendMessage writes
 * those rows). Synchronous statements for SqliteAttachmentStorage's units.
 */
export class AttachmentsRepository {
  private readonly insertStatement;
  private readonly byIdStatement;
  private readonly usedStatement;
  private readonly completeStatement;
  private readonly deleteStatement;
  private readonly referencedStatement;
  private readonly canReadStatement;
  private readonly namingStatement;
  private readonly orphanStatement;
  private readonly unorphanStatement;
  private readonly forgetNamedOrphansStatement;
  private readonly orphansDueStatement;
  private readonly expiredStatement;
  private readonly unreferencedStatement;
  private readonly statsStatement;
  private readonly secretStatement;
  private readonly insertSecretStatement;

  constructor(db: Db) {
    this.insertStatement = db.prepare(
      `INSERT INTO uploads (id, user_id, device_id, length, name, declared_type, encrypted, keep_metadata, duration_ms, created_at, expires_at)
       VALUES (@id, @userId, @deviceId, @length, @name, @declaredType, @encrypted, @keepMetadata, @durationMs, @now, @expiresAt)`,
    );
    this.byIdStatement = db.prepare<[string], UploadRecord>(`SELECT ${UPLOAD_COLUMNS} FROM uploads u WHERE u.id = ?`);
    // A complete upload counts by what is stored, an incomplete one by what the client announced.
    this.usedStatement = db
      .prepare<[number, number], number>(
        'SELECT coalesce(sum(coalesce(size, length)), 0) FROM uploads WHERE user_id = ? AND (completed_at IS NOT NULL OR expires_at > ?)',
      )
      .pluck();
    this.completeStatement = db.prepare(
      `UPDATE uploads SET completed_at = @now, sha256 = @sha256, size = @size, mime = @mime, width = @width, height = @height,
              thumb_sha256 = @thumbSha256, thumb_width = @thumbWidth, thumb_height = @thumbHeight
        WHERE id = @id`,
    );
    this.deleteStatement = db.prepare<[string]>('DELETE FROM uploads WHERE id = ?');
    this.referencedStatement = db.prepare<[string], number>('SELECT 1 FROM attachment_refs WHERE upload_id = ? LIMIT 1').pluck();
    // visibleRange (ports/visibility.ts) in SQL: a ref's seq in (joined_seq, left_seq ?? last seq].
    this.canReadStatement = db
      .prepare<{ id: string; userId: number }, number>(
        `SELECT 1 FROM uploads u
          WHERE u.id = @id
            AND (u.user_id = @userId
                 OR EXISTS (SELECT 1 FROM attachment_refs r
                              JOIN thread_members m ON m.thread_id = r.thread_id AND m.user_id = @userId
                             WHERE r.upload_id = u.id AND r.seq > m.joined_seq AND (m.left_seq IS NULL OR r.seq <= m.left_seq)))`,
      )
      .pluck();
    this.namingStatement = db
      .prepare<[string, string], string>('SELECT id FROM uploads WHERE sha256 = ? UNION SELECT id FROM uploads WHERE thumb_sha256 = ?')
      .pluck();
    // An older record of the same orphan keeps its time: the grace runs from when the blob was first left unnamed.
    this.orphanStatement = db.prepare<[string, number]>('INSERT INTO blob_orphans (sha256, since) VALUES (?, ?) ON CONFLICT DO NOTHING');
    this.unorphanStatement = db.prepare<[string]>('DELETE FROM blob_orphans WHERE sha256 = ?');
    this.forgetNamedOrphansStatement = db.prepare(
      `DELETE FROM blob_orphans WHERE EXISTS (SELECT 1 FROM uploads WHERE sha256 = blob_orphans.sha256)
                                   OR EXISTS (SELECT 1 FROM uploads WHERE thumb_sha256 = blob_orphans.sha256)`,
    );
    this.orphansDueStatement = db
      .prepare<[number], string>(
        `SELECT o.sha256 FROM blob_orphans o
          WHERE o.since < ?
            AND NOT EXISTS (SELECT 1 FROM uploads WHERE sha256 = o.sha256)
            AND NOT EXISTS (SELECT 1 FROM uploads WHERE thumb_sha256 = o.sha256)
          ORDER BY o.since, o.sha256`,
      )
      .pluck();
    this.expiredStatement = db.prepare<[number], UploadBlobs>(
      `SELECT u.id, u.sha256, u.thumb_sha256 FROM uploads u
        WHERE u.completed_at IS NULL AND u.expires_at <= ? AND NOT EXISTS (SELECT 1 FROM attachment_refs r WHERE r.upload_id = u.id)
        ORDER BY u.id`,
    );
    this.unreferencedStatement = db.prepare<[number], UploadBlobs>(
      `SELECT u.id, u.sha256, u.thumb_sha256 FROM uploads u
        WHERE u.completed_at IS NOT NULL AND u.completed_at < ? AND NOT EXISTS (SELECT 1 FROM attachment_refs r WHERE r.upload_id = u.id)
        ORDER BY u.id`,
    );
    this.statsStatement = db.prepare<[], { uploads: number; incomplete: number; blobs: number; blob_bytes: number; uploaded_bytes: number }>(
      `SELECT (SELECT count(*) FROM uploads) AS uploads,
              (SELECT count(*) FROM uploads WHERE completed_at IS NULL) AS incomplete,
              (SELECT count(*) FROM (SELECT sha256 FROM uploads WHERE sha256 IS NOT NULL
                                     UNION SELECT thumb_sha256 FROM uploads WHERE thumb_sha256 IS NOT NULL)) AS blobs,
              (SELECT coalesce(sum(size), 0) FROM (SELECT max(size) AS size FROM uploads WHERE sha256 IS NOT NULL GROUP BY sha256)) AS blob_bytes,
              (SELECT coalesce(sum(size), 0) FROM uploads WHERE completed_at IS NOT NULL) AS uploaded_bytes`,
    );
    this.secretStatement = db.prepare<[string], Buffer>('SELECT value FROM server_secrets WHERE name = ?').pluck();
    this.insertSecretStatement = db.prepare<[string, Buffer]>('INSERT INTO server_secrets (name, value) VALUES (?, ?) ON CONFLICT DO NOTHING');
  }

  insert(upload: NewUpload): void {
    this.insertStatement.run({
      id: upload.id,
      userId: upload.userId,
      deviceId: upload.deviceId,
      length: upload.length,
      name: upload.name,
      declaredType: upload.declaredType,
      encrypted: upload.encrypted ? 1 : 0,
      keepMetadata: upload.keepMetadata ? 1 : 0,
      durationMs: upload.durationMs,
      now: upload.now,
      expiresAt: upload.expiresAt,
    });
  }

  byId(id: string): UploadRecord | undefined {
    return this.byIdStatement.get(id);
  }

  usedBytes(userId: number, now: number): number {
    return this.usedStatement.get(userId, now) ?? 0;
  }

  /** False when there is no such upload. */
  complete(id: string, blob: CompletedBlob, now: number): boolean {
    return (
      this.completeStatement.run({
        id,
        now,
        sha256: blob.sha256,
        size: blob.size,
        mime: blob.mime,
        width: blob.width,
        height: blob.height,
        thumbSha256: blob.thumbnail?.sha256 ?? null,
        thumbWidth: blob.thumbnail?.width ?? null,
        thumbHeight: blob.thumbnail?.height ?? null,
      }).changes === 1
    );
  }

  delete(id: string): void {
    this.deleteStatement.run(id);
  }

  referenced(id: string): boolean {
    return this.referencedStatement.get(id) === 1;
  }

  canRead(userId: number, id: string): boolean {
    return this.canReadStatement.get({ id, userId }) === 1;
  }

  /** Ids of the uploads that name the blob, as file or thumbnail. */
  naming(sha256: string): string[] {
    return this.namingStatement.all(sha256, sha256);
  }

  orphan(sha256: string, now: number): void {
    this.orphanStatement.run(sha256, now);
  }

  unorphan(sha256: string): void {
    this.unorphanStatement.run(sha256);
  }

  /** Drops the records of orphans an upload names again (completeUpload on another connection raced the collection). */
  forgetNamedOrphans(): void {
    this.forgetNamedOrphansStatement.run();
  }

  orphansDue(before: number): string[] {
    return this.orphansDueStatement.all(before);
  }

  expired(now: number): UploadBlobs[] {
    return this.expiredStatement.all(now);
  }

  unreferencedBefore(completedBefore: number): UploadBlobs[] {
    return this.unreferencedStatement.all(completedBefore);
  }

  stats(): { uploads: number; incomplete: number; blobs: number; blob_bytes: number; uploaded_bytes: number } {
    return this.statsStatement.get() as { uploads: number; incomplete: number; blobs: number; blob_bytes: number; uploaded_bytes: number };
  }

  secret(name: string): Buffer | undefined {
    return this.secretStatement.get(name);
  }

  insertSecretIfAbsent(name: string, value: Uint8Array): void {
    this.insertSecretStatement.run(name, Buffer.from(value.buffer, value.byteOffset, value.byteLength));
  }
}
