/**
 * Where attachment bytes live: uploads in progress ("staged", by upload id,
 * appended to in order as tus PATCHes arrive) and finished content stored
 * once by its SHA-256 ("blobs"). The database knows which upload names which
 * blob; this store knows only bytes. Implementations: disk (under the data
 * directory; works on a volume several nodes share, since every move is a
 * rename within it) and memory (tests). One contract suite:
 * test/contracts/blob-store.contract.ts.
 */

/** An inclusive byte range, as HTTP's Range header names one. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

export interface BlobStoreStats {
  readonly blobs: number;
  readonly blobBytes: number;
  readonly staged: number;
  readonly stagedBytes: number;
}

export interface BlobStore {
  /** Starts an empty staged file for the upload (idempotent). */
  createStaged(uploadId: string): Promise<void>;
  /** Bytes staged so far, or undefined when there is no staged file: the tus offset. */
  stagedSize(uploadId: string): Promise<number | undefined>;
  /**
   * Appends `chunks` at `offset` (which must equal stagedSize, else it throws
   * BlobStoreError 'offset_mismatch'), stopping with BlobStoreError
   * 'too_long' before more than `maxBytes` would be written in total.
   * Bytes that arrived before the stream ended or failed stay staged (tus
   * resumes from them); resolves to the new staged size. Reads `chunks` with
   * backpressure: never more than one chunk held at a time.
   */
  appendStaged(uploadId: string, offset: number, chunks: AsyncIterable<Uint8Array>, maxBytes: number): Promise<number>;
  /** The staged bytes, whole or a range, streamed. */
  readStaged(uploadId: string, range?: ByteRange): AsyncIterable<Uint8Array>;
  /** Replaces the staged bytes with `chunks` (an image rewritten without its location data). */
  rewriteStaged(uploadId: string, chunks: AsyncIterable<Uint8Array>): Promise<number>;
  /**
   * Stores the staged bytes as the blob `sha256` (computed by the caller from
   * readStaged); when that blob exists already it is touched instead (young
   * again: see blobWrittenAt). The staged copy is KEPT: the caller deletes it
   * with deleteStaged once its row names the blob and it has checked the
   * blob is still there (collection may take it between this call and the
   * row; committing the kept copy again puts it back). `created`: whether
   * the content was new. (The disk store keeps the copy as a second hard
   * link; on a file system without hard links the staged file becomes the
   * blob, and the caller finds it gone.)
   */
  commitStaged(uploadId: string, sha256: string): Promise<{ readonly created: boolean }>;
  deleteStaged(uploadId: string): Promise<void>;
  /** Stores small derived content (a thumbnail) as a blob under its own hash, computed here. */
  putBlob(bytes: Uint8Array): Promise<{ readonly sha256: string; readonly size: number }>;
  blobSize(sha256: string): Promise<number | undefined>;
  /**
   * Unix ms of the blob's last write, or undefined when there is none.
   * commitStaged and putBlob of content already there count as writes: a new
   * upload deduplicated onto an orphan makes it young again, and collection
   * deletes no blob younger than its grace.
   */
  blobWrittenAt(sha256: string): Promise<number | undefined>;
  /** The blob, whole or a range (inclusive), streamed. Throws BlobStoreError 'not_found' for an unknown hash. */
  readBlob(sha256: string, range?: ByteRange): AsyncIterable<Uint8Array>;
  /**
   * Deletes the blob. With `stillUnnamed` (collection), the blob is first
   * moved out of reach (no reader, blobSize or commitStaged sees it), then
   * `stillUnnamed()` is asked: true, it is deleted ('deleted'); false (an
   * upload named it meanwhile), it is put back ('kept': a copy committed
   * meanwhile is the same content, so replacing it is harmless). Asking after
   * the move is what makes it safe: an upload that names the blob later
   * finds it missing after completing and stores it again (see
   * commitStaged). If stillUnnamed rejects, the blob is put back and the
   * error passed on. 'missing': there was no such blob.
   */
  deleteBlob(sha256: string, stillUnnamed?: () => Promise<boolean>): Promise<DeleteBlobOutcome>;
  /**
   * Blobs a deleteBlob moved out of reach before `before` (Unix ms) and never
   * finished with (the process stopped between the move and the decision):
   * each is put back when `named(sha256)` says an upload names it, else
   * deleted. Collection's full sweep calls it. A store whose deletes cannot
   * be cut short (memory) has none.
   */
  sweepTrash(before: number, named: (sha256: string) => Promise<boolean>): Promise<TrashSweep>;
  /** Every blob, for collection's check against the database. */
  listBlobs(): AsyncIterable<{ readonly sha256: string; readonly size: number }>;
  /** Staged upload ids, for collection of staged files whose upload row is gone. */
  listStaged(): AsyncIterable<string>;
  stats(): Promise<BlobStoreStats>;
}

export type DeleteBlobOutcome = 'deleted' | 'kept' | 'missing';

export interface TrashSweep {
  /** Put back: an upload names them. */
  readonly restored: number;
  readonly deleted: number;
  readonly deletedBytes: number;
}

export type BlobStoreErrorCode = 'offset_mismatch' | 'too_long' | 'not_found' | 'invalid_hash';

export class BlobStoreError extends Error {
  constructor(
    readonly code: BlobStoreErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'BlobStoreError';
  }
}
