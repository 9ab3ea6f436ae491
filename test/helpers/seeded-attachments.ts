import type { Db } from '../../src/storage/database.js';
import type { AttachmentStorage, UploadRow } from '../../src/storage/ports/attachments.js';
import { SEED_UPLOAD } from './sqlite-messaging.js';

/**
 * TEST FIXTURE, raw SQL over an SQLite database: uploads seeded as the upload
 * endpoint would leave them, and `attachable` as the port documents it (the
 * user's own complete upload, or a complete one a message they may see
 * references). Stands in for the engines' AttachmentStorage in the message
 * path's service tests; the engines' own contract is storage-attachments.
 */
export function seededAttachments(db: Db): Pick<AttachmentStorage, 'attachable'> & {
  seed(userId: number, deviceId: number, id: string, options?: { complete?: boolean }): string;
} {
  const readable = db.prepare<[string, number, number], Record<string, unknown>>(
    `SELECT u.* FROM uploads u
      WHERE u.id = ? AND u.completed_at IS NOT NULL
        AND (u.user_id = ? OR EXISTS (
              SELECT 1 FROM attachment_refs r JOIN thread_members m ON m.thread_id = r.thread_id AND m.user_id = ?
               WHERE r.upload_id = u.id AND r.seq > m.joined_seq AND (m.left_seq IS NULL OR r.seq <= m.left_seq)))`,
  );
  return {
    seed: (userId, deviceId, id, options = {}) => {
      db.prepare(SEED_UPLOAD).run(id, userId, deviceId);
      if (options.complete === false) db.prepare('UPDATE uploads SET completed_at = NULL, sha256 = NULL, size = NULL, mime = NULL WHERE id = ?').run(id);
      return id;
    },
    attachable: async (userId, ids) => {
      const found = new Map<string, UploadRow>();
      for (const id of ids) {
        const row = readable.get(id, userId, userId);
        if (row) found.set(id, uploadRow(row));
      }
      return found;
    },
  };
}

function uploadRow(row: Record<string, unknown>): UploadRow {
  const n = (key: string): number | null => (row[key] === null ? null : Number(row[key]));
  return {
    id: String(row.id),
    userId: Number(row.user_id),
    deviceId: Number(row.device_id),
    length: Number(row.length),
    name: String(row.name),
    declaredType: String(row.declared_type),
    encrypted: row.encrypted === 1,
    keepMetadata: row.keep_metadata === 1,
    durationMs: n('duration_ms'),
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    completedAt: n('completed_at'),
    blob:
      row.sha256 === null
        ? null
        : {
            sha256: String(row.sha256),
            size: Number(row.size),
            mime: String(row.mime),
            width: n('width'),
            height: n('height'),
            thumbnail: row.thumb_sha256 === null ? null : { sha256: String(row.thumb_sha256), width: Number(row.thumb_width), height: Number(row.thumb_height) },
          },
  };
}
