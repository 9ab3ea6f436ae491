import { blobsOf, toUploadRow } from '../attachment-rows.js';
import type {
  AttachmentStats,
  AttachmentStorage,
  CollectedUploads,
  CompletedBlob,
  CreateUploadOutcome,
  NewUpload,
  UploadRow,
} from '../ports/attachments.js';
import { AttachmentsRepository, type UploadBlobs } from '../repositories/attachments.js';
import type { Store } from '../store.js';

/**
 * AttachmentStorage on SQLite: every write one synchronous unit in the group
 * commit (the single writer makes a quota check and its insert atomic, and
 * orders a collection against completions and sends); reads direct.
 */
export class SqliteAttachmentStorage implements AttachmentStorage {
  private readonly attachments: AttachmentsRepository;

  constructor(private readonly store: Store) {
    this.attachments = new AttachmentsRepository(store.db);
  }

  createUpload(input: NewUpload, quotaBytes: number): Promise<CreateUploadOutcome> {
    const { attachments } = this;
    return this.store.batcher.submit((): CreateUploadOutcome => {
      const usedBytes = attachments.usedBytes(input.userId, input.now);
      if (usedBytes + input.length > quotaBytes) return { kind: 'over_quota', usedBytes };
      attachments.insert(input);
      return { kind: 'created' };
    });
  }

  async upload(id: string): Promise<UploadRow | undefined> {
    const record = this.attachments.byId(id);
    return record && toUploadRow(record);
  }

  completeUpload(id: string, blob: CompletedBlob, now: number): Promise<boolean> {
    const { attachments } = this;
    return this.store.batcher.submit(() => {
      if (!attachments.complete(id, blob, now)) return false;
      for (const sha256 of [blob.sha256, blob.thumbnail?.sha256]) if (sha256 !== undefined) attachments.unorphan(sha256);
      return true;
    });
  }

  deleteUpload(id: string, now: number): Promise<'deleted' | 'referenced' | 'missing'> {
    const { attachments } = this;
    return this.store.batcher.submit(() => {
      const record = attachments.byId(id);
      if (!record) return 'missing';
      if (attachments.referenced(id)) return 'referenced';
      attachments.delete(id);
      // A terminated upload that was complete may have been the last to name its blobs.
      for (const sha256 of blobsOf(record)) if (attachments.naming(sha256).length === 0) attachments.orphan(sha256, now);
      return 'deleted';
    });
  }

  async canRead(userId: number, uploadId: string): Promise<boolean> {
    return this.attachments.canRead(userId, uploadId);
  }

  async attachable(userId: number, ids: readonly string[]): Promise<ReadonlyMap<string, UploadRow>> {
    const { attachments } = this;
    return this.store.read(() => {
      const found = new Map<string, UploadRow>();
      for (const id of new Set(ids)) {
        const record = attachments.byId(id);
        if (record?.completed_at != null && attachments.canRead(userId, id)) found.set(id, toUploadRow(record));
      }
      return found;
    });
  }

  async usedBytes(userId: number, now: number): Promise<number> {
    return this.attachments.usedBytes(userId, now);
  }

  async collect(now: number, graceMs: number, dryRun: boolean): Promise<CollectedUploads> {
    const { attachments } = this;
    const pass = (): CollectedUploads => {
      const incomplete = attachments.expired(now);
      const unreferenced = attachments.unreferencedBefore(now - graceMs);
      const orphanedBlobs = leftUnnamed([...incomplete, ...unreferenced], (sha256) => attachments.naming(sha256));
      if (!dryRun) {
        for (const upload of [...incomplete, ...unreferenced]) attachments.delete(upload.id);
        for (const sha256 of orphanedBlobs) attachments.orphan(sha256, now);
        attachments.forgetNamedOrphans();
      }
      return { incomplete: incomplete.map((upload) => upload.id), unreferenced: unreferenced.map((upload) => upload.id), orphanedBlobs };
    };
    // A dry run reads one snapshot and takes no write lock.
    return dryRun ? this.store.read(pass) : this.store.batcher.submit(pass);
  }

  async orphansDue(now: number, graceMs: number): Promise<readonly string[]> {
    return this.attachments.orphansDue(now - graceMs);
  }

  async forgetOrphans(sha256s: readonly string[]): Promise<void> {
    if (sha256s.length === 0) return;
    const { attachments } = this;
    await this.store.batcher.submit(() => {
      for (const sha256 of sha256s) attachments.unorphan(sha256);
    });
  }

  async blobNamed(sha256: string): Promise<boolean> {
    return this.attachments.naming(sha256).length > 0;
  }

  /** One indexed lookup each: in-process, so a batch costs no round trips. */
  async namedBlobs(sha256s: readonly string[]): Promise<ReadonlySet<string>> {
    return new Set(sha256s.filter((sha256) => this.attachments.naming(sha256).length > 0));
  }

  async stats(): Promise<AttachmentStats> {
    const row = this.attachments.stats();
    return { uploads: row.uploads, incompleteUploads: row.incomplete, blobs: row.blobs, blobBytes: row.blob_bytes, uploadedBytes: row.uploaded_bytes };
  }

  async secret(name: string, make: () => Uint8Array): Promise<Uint8Array> {
    const { attachments } = this;
    const stored = attachments.secret(name);
    if (stored) return new Uint8Array(stored);
    // Insert-if-absent, then read: another process on the file (a CLI) may have stored it first.
    const value = make();
    const kept = await this.store.batcher.submit(() => {
      attachments.insertSecretIfAbsent(name, value);
      return attachments.secret(name) as Buffer;
    });
    return new Uint8Array(kept);
  }
}

/**
 * The blobs of `removed` that no other upload names: every upload naming one
 * is among those removed. Read before the rows go, so that a dry run reports
 * the same as a pass.
 */
function leftUnnamed(removed: readonly UploadBlobs[], naming: (sha256: string) => string[]): string[] {
  const ids = new Set(removed.map((upload) => upload.id));
  const hashes = [...new Set(removed.flatMap(blobsOf))].sort();
  return hashes.filter((sha256) => naming(sha256).every((id) => ids.has(id)));
}
