import type { UploadRow } from './ports/attachments.js';

/**
 * An uploads row as both engines select it (UPLOAD_COLUMNS): SQLite gives its
 * 0/1 flags as numbers, PostgreSQL as booleans. Only the engines see it;
 * what crosses the port is UploadRow.
 */
export interface UploadRecord {
  readonly id: string;
  readonly user_id: number;
  readonly device_id: number;
  readonly length: number;
  readonly name: string;
  readonly declared_type: string;
  readonly encrypted: number | boolean;
  readonly keep_metadata: number | boolean;
  readonly duration_ms: number | null;
  readonly created_at: number;
  readonly expires_at: number;
  readonly completed_at: number | null;
  readonly sha256: string | null;
  readonly size: number | null;
  readonly mime: string | null;
  readonly width: number | null;
  readonly height: number | null;
  readonly thumb_sha256: string | null;
  readonly thumb_width: number | null;
  readonly thumb_height: number | null;
  readonly [column: string]: unknown;
}

/** The columns of UploadRecord, for `SELECT ${UPLOAD_COLUMNS} FROM uploads u`. */
export const UPLOAD_COLUMNS = `u.id, u.user_id, u.device_id, u.length, u.name, u.declared_type, u.encrypted, u.keep_metadata, u.duration_ms,
  u.created_at, u.expires_at, u.completed_at, u.sha256, u.size, u.mime, u.width, u.height, u.thumb_sha256, u.thumb_width, u.thumb_height`;

export function toUploadRow(record: UploadRecord): UploadRow {
  // A row is complete when completeUpload set its blob: completed_at, sha256, size and mime together.
  const complete = record.completed_at !== null && record.sha256 !== null && record.size !== null && record.mime !== null;
  return {
    id: record.id,
    userId: record.user_id,
    deviceId: record.device_id,
    length: record.length,
    name: record.name,
    declaredType: record.declared_type,
    encrypted: record.encrypted === true || record.encrypted === 1,
    keepMetadata: record.keep_metadata === true || record.keep_metadata === 1,
    durationMs: record.duration_ms,
    createdAt: record.created_at,
    expiresAt: record.expires_at,
    completedAt: record.completed_at,
    blob: complete
      ? {
          sha256: record.sha256 as string,
          size: record.size as number,
          mime: record.mime as string,
          width: record.width,
          height: record.height,
          thumbnail:
            record.thumb_sha256 !== null && record.thumb_width !== null && record.thumb_height !== null
              ? { sha256: record.thumb_sha256, width: record.thumb_width, height: record.thumb_height }
              : null,
        }
      : null,
  };
}

/** The blobs an upload names (its file and its thumbnail), for orphan bookkeeping. */
export function blobsOf(record: Pick<UploadRecord, 'sha256' | 'thumb_sha256'>): string[] {
  return [record.sha256, record.thumb_sha256].filter((hash): hash is string => hash !== null);
}
