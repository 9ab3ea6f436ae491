import type { AttachmentStorage } from '../../src/storage/ports/attachments.js';
import { SqliteAttachmentStorage } from '../../src/storage/sqlite/attachments.js';
import type { Store } from '../../src/storage/store.js';
import { SEED_UPLOAD } from './sqlite-messaging.js';

/**
 * The engine's AttachmentStorage over the test's SQLite store, and a TEST
 * FIXTURE that seeds uploads with raw SQL as the upload endpoint would leave
 * them (complete 640×480 JPEGs with a thumbnail, or incomplete), so the
 * message path's tests need no upload.
 */
export function seededAttachments(store: Store): Pick<AttachmentStorage, 'attachable'> & {
  seed(userId: number, deviceId: number, id: string, options?: { complete?: boolean; encrypted?: boolean }): string;
} {
  const storage = new SqliteAttachmentStorage(store);
  return {
    seed: (userId, deviceId, id, options = {}) => {
      store.db.prepare(SEED_UPLOAD).run(id, userId, deviceId);
      if (options.encrypted === true) {
        store.db.prepare("UPDATE uploads SET encrypted = 1, mime = 'application/octet-stream', width = NULL, height = NULL, thumb_sha256 = NULL, thumb_width = NULL, thumb_height = NULL WHERE id = ?").run(id);
      }
      if (options.complete === false) {
        store.db.prepare('UPDATE uploads SET completed_at = NULL, sha256 = NULL, size = NULL, mime = NULL, width = NULL, height = NULL, thumb_sha256 = NULL, thumb_width = NULL, thumb_height = NULL WHERE id = ?').run(id);
      }
      return id;
    },
    attachable: (userId, ids) => storage.attachable(userId, ids),
  };
}
