import type { Clock } from '../clock.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { Collector } from '../services/attachments/collector.js';
import { AttachmentDownloads } from '../services/attachments/downloads.js';
import { attachmentMedia } from '../services/attachments/media.js';
import { UploadService } from '../services/attachments/uploads.js';
import type { RateLimitStore } from '../services/limits/rate-limit-store.js';
import { diskBlobStore } from '../storage/blobs/disk.js';
import type { Storage } from '../storage/ports/storage.js';

/**
 * Attachments as a server runs them (docs/attachments.md): the blob store
 * under the data directory (on SQLite and PostgreSQL alike: with several nodes
 * the data directory is a volume they share), uploads, downloads, and the
 * collection timer. Downloads and collection run even when
 * attachments.enabled is false: what was sent before stays readable, and
 * what nobody needs is still removed; only the upload routes go.
 */
export interface ServerAttachments {
  /** Undefined when attachments.enabled is false: no upload routes. */
  readonly uploads: UploadService | undefined;
  readonly downloads: AttachmentDownloads;
  readonly collector: Collector;
}

export function buildAttachments(config: Config, deps: { readonly storage: Pick<Storage, 'attachments'>; readonly clock: Clock; readonly log: Logger; readonly limits: RateLimitStore }): ServerAttachments {
  const settings = config.attachments;
  const { storage, clock } = deps;
  // The same store the admin commands open (chatd blobs gc, chatd stats): storage.dir/blobs.
  const blobs = diskBlobStore(config.storage.dir);
  const media = attachmentMedia({ maxPixels: settings.max_image_pixels, thumbnailPixels: settings.thumbnail_pixels });
  const uploads = settings.enabled
    ? new UploadService({
        storage: storage.attachments,
        blobs,
        clock,
        limits: deps.limits,
        media,
        log: deps.log,
        settings: {
          maxFileBytes: settings.max_file_bytes,
          quotaBytes: settings.user_quota_bytes,
          allowedTypes: settings.allowed_types,
          allowEncrypted: settings.allow_encrypted,
          uploadsPerMinute: settings.uploads_per_minute,
          expiryMs: settings.upload_expiry_hours * 3_600_000,
        },
      })
    : undefined;
  const downloads = new AttachmentDownloads({ attachments: storage.attachments, blobs, now: () => clock.now(), linkTtlSeconds: settings.link_ttl_seconds });
  const collector = new Collector({ storage: storage.attachments, blobs, clock, graceMs: settings.gc_grace_hours * 3_600_000, log: deps.log });
  return { uploads, downloads, collector };
}
