/**
 * The storage attachments need (docs/attachments.md): uploads (tus, one row
 * per file a device sends), which messages reference them (written by
 * appendMessage in the message's own unit, never here), who may read them,
 * quotas, collection, and the secrets every node shares. The bytes themselves
 * are in the BlobStore (src/storage/blobs), not in the database.
 */

/** An upload as every engine returns it. Times are Unix ms. */
export interface UploadRow {
  /** Random, 128 bits, base64url: the attachment id messages carry. */
  readonly id: string;
  readonly userId: number;
  readonly deviceId: number;
  /** Upload-Length: what the client said it will send (counted against the quota until the upload completes, then its stored size). */
  readonly length: number;
  readonly name: string;
  readonly declaredType: string;
  /** Ciphertext from an E2E client: never sniffed past octet-stream, never thumbnailed. */
  readonly encrypted: boolean;
  /** The sender asked to keep the image's metadata (location included). */
  readonly keepMetadata: boolean;
  readonly durationMs: number | null;
  readonly createdAt: number;
  readonly expiresAt: number;
  /** Null until the last byte arrived and the blob is stored. */
  readonly completedAt: number | null;
  readonly blob: CompletedBlob | null;
}

/** What the server found in a complete upload. */
export interface CompletedBlob {
  /** SHA-256 (lowercase hex) of the bytes stored and served. */
  readonly sha256: string;
  readonly size: number;
  /** Sniffed from the content, never from the name. */
  readonly mime: string;
  readonly width: number | null;
  readonly height: number | null;
  readonly thumbnail: { readonly sha256: string; readonly width: number; readonly height: number } | null;
}

/** An upload as createUpload takes it: the row's own fields, dated `now`. */
export type NewUpload = Pick<
  UploadRow,
  'id' | 'userId' | 'deviceId' | 'length' | 'name' | 'declaredType' | 'encrypted' | 'keepMetadata' | 'durationMs' | 'expiresAt'
> & { readonly now: number };

export type CreateUploadOutcome =
  | { readonly kind: 'created' }
  /** The user's uploads (complete, and incomplete not yet expired) plus this one's length would pass the quota. */
  | { readonly kind: 'over_quota'; readonly usedBytes: number };

/** What collection removed (or, in a dry run, would remove). */
export interface CollectedUploads {
  /** Upload ids whose staged bytes the caller deletes from the blob store. */
  readonly incomplete: readonly string[];
  /** Complete uploads no message referenced within the grace period. */
  readonly unreferenced: readonly string[];
  /** Blob hashes (files and thumbnails) no upload names any more: recorded in blob_orphans, deleted after the grace. */
  readonly orphanedBlobs: readonly string[];
}

export interface AttachmentStats {
  readonly uploads: number;
  readonly incompleteUploads: number;
  /** Distinct blobs named by uploads (files and thumbnails). */
  readonly blobs: number;
  /** Sum of distinct blobs' sizes, as recorded (thumbnails' sizes are not recorded: the blob store's own figure has them). */
  readonly blobBytes: number;
  /** Sum of complete uploads' sizes: what users sent, before deduplication. */
  readonly uploadedBytes: number;
}

export interface AttachmentStorage {
  /** Creates the row, refusing (and storing nothing) when it would pass `quotaBytes` for the user. */
  createUpload(input: NewUpload, quotaBytes: number): Promise<CreateUploadOutcome>;
  upload(id: string): Promise<UploadRow | undefined>;
  /** Marks the upload complete with its blob. False when it is gone (collected or terminated meanwhile). Also takes the blob (and its thumbnail) out of blob_orphans. */
  completeUpload(id: string, blob: CompletedBlob, now: number): Promise<boolean>;
  /** Deletes an upload that no message references. 'referenced': refused, nothing changed. */
  deleteUpload(id: string, now: number): Promise<'deleted' | 'referenced' | 'missing'>;
  /**
   * Whether `userId` may read the upload: it is theirs, or a message that
   * references it is within what they may see of its thread (visibleRange in
   * ports/visibility.ts: a current member from joined_seq, a former one up to
   * left_seq).
   */
  canRead(userId: number, uploadId: string): Promise<boolean>;
  /** The uploads among `ids` that `userId` may attach to a message (canRead and complete), by id. */
  attachable(userId: number, ids: readonly string[]): Promise<ReadonlyMap<string, UploadRow>>;
  /** Bytes counted against the user's quota: complete uploads plus incomplete ones not expired. */
  usedBytes(userId: number, now: number): Promise<number>;
  /**
   * One pass of collection at `now`: incomplete uploads past expires_at;
   * complete ones never referenced and completed before now - graceMs; blobs
   * no upload names any more become orphans (since now). `dryRun`: reports
   * without changing anything.
   */
  collect(now: number, graceMs: number, dryRun: boolean): Promise<CollectedUploads>;
  /** Orphans older than the grace that no upload names again: the caller deletes them from the blob store, then calls forgetOrphans. */
  orphansDue(now: number, graceMs: number): Promise<readonly string[]>;
  forgetOrphans(sha256s: readonly string[]): Promise<void>;
  /** Whether any upload names this blob (as file or thumbnail): the blob store's own listing is checked against it. */
  blobNamed(sha256: string): Promise<boolean>;
  /** Those of `sha256s` some upload names (as file or thumbnail): blobNamed for a batch, in one query where the engine is remote. */
  namedBlobs(sha256s: readonly string[]): Promise<ReadonlySet<string>>;
  stats(): Promise<AttachmentStats>;
  /** The named secret, created from `make()` by whichever node asks first; every node reads the same value. */
  secret(name: string, make: () => Uint8Array): Promise<Uint8Array>;
}
