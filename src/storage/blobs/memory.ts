import { createHash } from 'node:crypto';
import type { Clock } from '../../clock.js';
import { type BlobStore, BlobStoreError, type BlobStoreStats, type ByteRange, type DeleteBlobOutcome, type TrashSweep } from '../ports/blobs.js';
import { checkHash, checkRange, checkUploadId } from './names.js';

interface Blob {
  readonly bytes: Uint8Array;
  writtenAt: number;
}

/** Bytes read back in pieces of this size, so readers see a stream as they do from disk. */
const READ_CHUNK = 64 * 1024;

/**
 * The blob store in memory, for tests and a single node that keeps nothing:
 * the same contract as the disk store (test/contracts/blob-store.contract.ts).
 */
export class MemoryBlobStore implements BlobStore {
  private readonly staged = new Map<string, Uint8Array[]>();
  private readonly blobs = new Map<string, Blob>();
  private readonly appending = new Set<string>();

  /** `clock` dates blobs for blobWrittenAt (collection's grace). */
  constructor(private readonly clock: Pick<Clock, 'now'> = { now: () => Date.now() }) {}

  async createStaged(uploadId: string): Promise<void> {
    checkUploadId(uploadId);
    if (!this.staged.has(uploadId)) this.staged.set(uploadId, []);
  }

  async stagedSize(uploadId: string): Promise<number | undefined> {
    checkUploadId(uploadId);
    const chunks = this.staged.get(uploadId);
    return chunks === undefined ? undefined : total(chunks);
  }

  async appendStaged(uploadId: string, offset: number, chunks: AsyncIterable<Uint8Array>, maxBytes: number): Promise<number> {
    const staged = this.stagedChunks(uploadId);
    if (this.appending.has(uploadId)) throw new BlobStoreError('offset_mismatch', `upload ${uploadId} is being written by another request`);
    let position = total(staged);
    if (position !== offset) throw new BlobStoreError('offset_mismatch', `upload ${uploadId} holds ${position} bytes, not ${offset}`);
    this.appending.add(uploadId);
    try {
      for await (const chunk of chunks) {
        const room = maxBytes - position;
        const fits = chunk.byteLength <= room ? chunk : chunk.subarray(0, Math.max(0, room));
        // A copy: the caller may reuse its buffer once the next chunk is asked for.
        staged.push(Uint8Array.from(fits));
        position += fits.byteLength;
        if (fits !== chunk) throw new BlobStoreError('too_long', `upload ${uploadId} would pass ${maxBytes} bytes; the first ${position} are kept`);
      }
      return position;
    } finally {
      this.appending.delete(uploadId);
    }
  }

  async *readStaged(uploadId: string, range?: ByteRange): AsyncIterable<Uint8Array> {
    checkRange(range);
    yield* pieces(concat(this.stagedChunks(uploadId)), range);
  }

  async rewriteStaged(uploadId: string, chunks: AsyncIterable<Uint8Array>): Promise<number> {
    this.stagedChunks(uploadId);
    const replacement: Uint8Array[] = [];
    for await (const chunk of chunks) replacement.push(Uint8Array.from(chunk));
    this.staged.set(uploadId, replacement);
    return total(replacement);
  }

  async commitStaged(uploadId: string, sha256: string): Promise<{ readonly created: boolean }> {
    checkHash(sha256);
    const bytes = concat(this.stagedChunks(uploadId));
    const existing = this.blobs.get(sha256);
    // The staged copy stays: the caller deletes it once its row names the blob and the blob is still there.
    if (existing !== undefined) {
      existing.writtenAt = this.clock.now();
      return { created: false };
    }
    this.blobs.set(sha256, { bytes, writtenAt: this.clock.now() });
    return { created: true };
  }

  async deleteStaged(uploadId: string): Promise<void> {
    checkUploadId(uploadId);
    this.staged.delete(uploadId);
  }

  async putBlob(bytes: Uint8Array): Promise<{ readonly sha256: string; readonly size: number }> {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const existing = this.blobs.get(sha256);
    if (existing !== undefined) existing.writtenAt = this.clock.now();
    else this.blobs.set(sha256, { bytes: Uint8Array.from(bytes), writtenAt: this.clock.now() });
    return { sha256, size: bytes.byteLength };
  }

  async blobSize(sha256: string): Promise<number | undefined> {
    return this.blobs.get(checkHash(sha256))?.bytes.byteLength;
  }

  /** When the blob was last written or deduplicated into (the clock's ms), or undefined: collection's grace. */
  async blobWrittenAt(sha256: string): Promise<number | undefined> {
    return this.blobs.get(checkHash(sha256))?.writtenAt;
  }

  async *readBlob(sha256: string, range?: ByteRange): AsyncIterable<Uint8Array> {
    checkRange(range);
    const blob = this.blobs.get(checkHash(sha256));
    if (blob === undefined) throw new BlobStoreError('not_found', `no blob ${sha256}`);
    yield* pieces(blob.bytes, range);
  }

  async deleteBlob(sha256: string, stillUnnamed?: () => Promise<boolean>): Promise<DeleteBlobOutcome> {
    const blob = this.blobs.get(checkHash(sha256));
    if (blob === undefined) return 'missing';
    this.blobs.delete(sha256);
    if (stillUnnamed === undefined) return 'deleted';
    let unnamed: boolean;
    try {
      unnamed = await stillUnnamed();
    } catch (error) {
      this.putBack(sha256, blob);
      throw error;
    }
    if (unnamed) return 'deleted';
    this.putBack(sha256, blob);
    return 'kept';
  }

  /** Nothing is ever left half-deleted in memory. */
  async sweepTrash(): Promise<TrashSweep> {
    return { restored: 0, deleted: 0, deletedBytes: 0 };
  }

  async *listBlobs(): AsyncIterable<{ readonly sha256: string; readonly size: number }> {
    for (const [sha256, blob] of [...this.blobs].sort(([a], [b]) => a.localeCompare(b))) yield { sha256, size: blob.bytes.byteLength };
  }

  async *listStaged(): AsyncIterable<string> {
    yield* [...this.staged.keys()];
  }

  async stats(): Promise<BlobStoreStats> {
    let blobBytes = 0;
    for (const blob of this.blobs.values()) blobBytes += blob.bytes.byteLength;
    let stagedBytes = 0;
    for (const chunks of this.staged.values()) stagedBytes += total(chunks);
    return { blobs: this.blobs.size, blobBytes, staged: this.staged.size, stagedBytes };
  }

  /** A copy committed while the blob was out of reach is the same content: the newer date stands. */
  private putBack(sha256: string, blob: Blob): void {
    const again = this.blobs.get(sha256);
    if (again === undefined) this.blobs.set(sha256, blob);
    else again.writtenAt = Math.max(again.writtenAt, blob.writtenAt);
  }

  private stagedChunks(uploadId: string): Uint8Array[] {
    const chunks = this.staged.get(checkUploadId(uploadId));
    if (chunks === undefined) throw new BlobStoreError('not_found', `no staged upload ${uploadId}`);
    return chunks;
  }
}

function total(chunks: readonly Uint8Array[]): number {
  return chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0);
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  return Buffer.concat(chunks);
}

function* pieces(bytes: Uint8Array, range: ByteRange | undefined): Iterable<Uint8Array> {
  const start = range?.start ?? 0;
  const end = Math.min(range === undefined ? bytes.byteLength : range.end + 1, bytes.byteLength);
  for (let at = start; at < end; at += READ_CHUNK) yield bytes.subarray(at, Math.min(at + READ_CHUNK, end));
}
