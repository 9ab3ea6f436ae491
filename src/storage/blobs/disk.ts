import { createHash, randomBytes } from 'node:crypto';
import { type FileHandle, link, mkdir, open, readdir, rename, stat, unlink, utimes } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { type BlobStore, BlobStoreError, type BlobStoreStats, type ByteRange, type DeleteBlobOutcome, type TrashSweep } from '../ports/blobs.js';
import { checkHash, checkRange, checkUploadId, isHash, isUploadId } from './names.js';

/** The blob store's directory in a data directory. */
export const BLOBS_DIRECTORY = 'blobs';

/** The blob store of a data directory (storage.dir): `<dataDir>/blobs`, made at the first write. */
export function diskBlobStore(dataDir: string): DiskBlobStore {
  return new DiskBlobStore(resolve(dataDir, BLOBS_DIRECTORY));
}

/** A staged upload's replacement while rewriteStaged writes it; deleteStaged removes it with the upload. */
const REWRITE_SUFFIX = '.rewrite';

/** Where deleteBlob moves a blob while it asks whether to delete it. */
const TRASH = 'trash';

/**
 * Attachment bytes on disk, under `root` (`<data_dir>/blobs`):
 *
 *   sha256/ab/ab12…   one file per distinct content, named by its SHA-256
 *   staging/<id>      an upload in progress, appended to in order
 *   trash/<sha>.<ms>.<random>
 *                     a blob deleteBlob moved out of reach while it asks
 *                     whether an upload names it (<ms>: when it was moved);
 *                     left only by a process that stopped then (sweepTrash)
 *
 * Every change a reader could see is a rename or a hard link within `root`
 * (staged → blob, temporary → blob, rewrite → staged), so a blob file is always whole, and
 * several nodes can share the directory on one volume. A blob is fsynced
 * before it is renamed in, and the directory after, so the database never
 * names content a crash could lose. Directories are 0700 and files 0600, as
 * the rest of the data directory.
 *
 * A blob's modification time is when it was last written or deduplicated
 * into (commitStaged and putBlob of content already there touch it):
 * collection deletes no blob younger than its grace (blobWrittenAt), so an
 * upload that has just been committed against existing content keeps it.
 */
export class DiskBlobStore implements BlobStore {
  /** Uploads being appended to in this process: a second PATCH at once would write at the same offset. */
  private readonly appending = new Set<string>();

  constructor(readonly root: string) {}

  async createStaged(uploadId: string): Promise<void> {
    const path = this.stagedPath(uploadId);
    await this.makeDirectory(join(this.root, 'staging'));
    // 'a': creates it empty, or leaves the bytes of an earlier call (idempotent).
    const handle = await open(path, 'a', 0o600);
    await handle.close();
  }

  async stagedSize(uploadId: string): Promise<number | undefined> {
    return sizeOf(this.stagedPath(uploadId));
  }

  async appendStaged(uploadId: string, offset: number, chunks: AsyncIterable<Uint8Array>, maxBytes: number): Promise<number> {
    const path = this.stagedPath(uploadId);
    if (this.appending.has(uploadId)) throw new BlobStoreError('offset_mismatch', `upload ${uploadId} is being written by another request`);
    this.appending.add(uploadId);
    let handle: FileHandle | undefined;
    try {
      handle = await openExisting(path, 'r+', `no staged upload ${uploadId}`);
      let position = (await handle.stat()).size;
      if (position !== offset) throw new BlobStoreError('offset_mismatch', `upload ${uploadId} holds ${position} bytes, not ${offset}`);
      // One chunk at a time, each written before the next is read: backpressure on the source, nothing held but it.
      // When the source fails (a client gone mid-request), what was written stays: tus resumes from it.
      for await (const chunk of chunks) {
        const room = maxBytes - position;
        const fits = chunk.byteLength <= room ? chunk : chunk.subarray(0, Math.max(0, room));
        await writeAll(handle, fits, position);
        position += fits.byteLength;
        if (fits !== chunk) throw new BlobStoreError('too_long', `upload ${uploadId} would pass ${maxBytes} bytes; the first ${position} are kept`);
      }
      return position;
    } finally {
      this.appending.delete(uploadId);
      await handle?.close();
    }
  }

  /** Errors (a bad id or range, nothing staged) come at the first read, as from every other store. */
  async *readStaged(uploadId: string, range?: ByteRange): AsyncIterable<Uint8Array> {
    const path = this.stagedPath(uploadId);
    checkRange(range);
    yield* readFile(path, range, `no staged upload ${uploadId}`);
  }

  async rewriteStaged(uploadId: string, chunks: AsyncIterable<Uint8Array>): Promise<number> {
    const path = this.stagedPath(uploadId);
    if ((await sizeOf(path)) === undefined) throw new BlobStoreError('not_found', `no staged upload ${uploadId}`);
    const temporary = `${path}${REWRITE_SUFFIX}`;
    const size = await writeNew(temporary, chunks);
    await rename(temporary, path);
    return size;
  }

  async commitStaged(uploadId: string, sha256: string): Promise<{ readonly created: boolean }> {
    const staged = this.stagedPath(uploadId);
    const blob = this.blobPath(sha256);
    const handle = await openExisting(staged, 'r+', `no staged upload ${uploadId}`);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    // The content is there already: make it young again so collection spares it (gone between the two looks:
    // collection took it, and it is stored afresh below). The staged copy stays either way: collection may
    // still take the blob before the caller's row names it (the caller checks, then deletes it).
    if ((await sizeOf(blob)) !== undefined && (await touch(blob))) return { created: false };
    await this.makeDirectory(join(blob, '..'));
    // A second name for the staged file, so the staged copy stays until the caller's row names the blob
    // (see the port). Two nodes committing the same content at once: the second finds it there.
    let created = true;
    try {
      await link(staged, blob);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') created = false;
      // A file system without hard links: the staged file itself becomes the blob (the caller finds it gone).
      else if (code === 'EPERM' || code === 'ENOTSUP' || code === 'ENOSYS' || code === 'EOPNOTSUPP') await rename(staged, blob);
      else throw error;
    }
    await touch(blob);
    await syncDirectory(join(blob, '..'));
    return { created };
  }

  async deleteStaged(uploadId: string): Promise<void> {
    const path = this.stagedPath(uploadId);
    await unlinkIfThere(path);
    await unlinkIfThere(`${path}${REWRITE_SUFFIX}`);
  }

  async putBlob(bytes: Uint8Array): Promise<{ readonly sha256: string; readonly size: number }> {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const blob = this.blobPath(sha256);
    if ((await sizeOf(blob)) !== undefined && (await touch(blob))) return { sha256, size: bytes.byteLength };
    const directory = join(blob, '..');
    await this.makeDirectory(directory);
    // A dot name: never listed as a blob while it is written.
    const temporary = join(directory, `.${sha256}.${randomBytes(6).toString('hex')}`);
    await writeNew(temporary, single(bytes));
    await rename(temporary, blob);
    await syncDirectory(directory);
    return { sha256, size: bytes.byteLength };
  }

  async blobSize(sha256: string): Promise<number | undefined> {
    return sizeOf(this.blobPath(sha256));
  }

  /** When the blob was last written or deduplicated into (Unix ms), or undefined when there is none: collection's grace. */
  async blobWrittenAt(sha256: string): Promise<number | undefined> {
    try {
      return (await stat(this.blobPath(sha256))).mtimeMs;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async *readBlob(sha256: string, range?: ByteRange): AsyncIterable<Uint8Array> {
    const path = this.blobPath(sha256);
    checkRange(range);
    yield* readFile(path, range, `no blob ${sha256}`);
  }

  async deleteBlob(sha256: string, stillUnnamed?: () => Promise<boolean>): Promise<DeleteBlobOutcome> {
    const blob = this.blobPath(sha256);
    if (stillUnnamed === undefined) return (await unlinkIfThere(blob)) ? 'deleted' : 'missing';
    const directory = join(this.root, TRASH);
    await this.makeDirectory(directory);
    const trash = join(directory, `${sha256}.${Date.now()}.${randomBytes(6).toString('hex')}`);
    try {
      await rename(blob, trash);
    } catch (error) {
      if (isMissing(error)) return 'missing';
      throw error;
    }
    // Out of reach now: an upload that commits this content from here on stores a new copy (or, having
    // found the old one, finds it gone after completing and commits its staged copy again).
    let unnamed: boolean;
    try {
      unnamed = await stillUnnamed();
    } catch (error) {
      await this.putBack(trash, blob);
      throw error;
    }
    if (unnamed) {
      await unlinkIfThere(trash);
      return 'deleted';
    }
    await this.putBack(trash, blob);
    return 'kept';
  }

  async sweepTrash(before: number, named: (sha256: string) => Promise<boolean>): Promise<TrashSweep> {
    const directory = join(this.root, TRASH);
    let restored = 0;
    let deleted = 0;
    let deletedBytes = 0;
    for (const name of await namesIn(directory)) {
      const [sha256, movedAt] = name.split('.');
      // A younger one may be a deleteBlob still asking: it decides itself.
      if (sha256 === undefined || !isHash(sha256) || !(Number(movedAt) < before)) continue;
      const path = join(directory, name);
      const size = await sizeOf(path);
      if (size === undefined) continue;
      if (await named(sha256)) {
        await this.putBack(path, this.blobPath(sha256));
        restored += 1;
      } else if (await unlinkIfThere(path)) {
        deleted += 1;
        deletedBytes += size;
      }
    }
    return { restored, deleted, deletedBytes };
  }

  async *listBlobs(): AsyncIterable<{ readonly sha256: string; readonly size: number }> {
    const top = join(this.root, 'sha256');
    for (const prefix of await namesIn(top)) {
      if (!/^[0-9a-f]{2}$/.test(prefix)) continue;
      for (const name of await namesIn(join(top, prefix))) {
        if (!isHash(name) || !name.startsWith(prefix)) continue;
        const size = await sizeOf(join(top, prefix, name));
        if (size !== undefined) yield { sha256: name, size };
      }
    }
  }

  async *listStaged(): AsyncIterable<string> {
    const ids = new Set<string>();
    for (const name of await namesIn(join(this.root, 'staging'))) {
      // A rewrite left by a crash names its upload too: deleteStaged removes both.
      const id = name.endsWith(REWRITE_SUFFIX) ? name.slice(0, -REWRITE_SUFFIX.length) : name;
      if (isUploadId(id)) ids.add(id);
    }
    yield* ids;
  }

  async stats(): Promise<BlobStoreStats> {
    let blobs = 0;
    let blobBytes = 0;
    for await (const blob of this.listBlobs()) {
      blobs += 1;
      blobBytes += blob.size;
    }
    let staged = 0;
    let stagedBytes = 0;
    const directory = join(this.root, 'staging');
    for (const name of await namesIn(directory)) {
      const size = await sizeOf(join(directory, name));
      if (size === undefined) continue;
      if (isUploadId(name)) staged += 1;
      stagedBytes += size;
    }
    return { blobs, blobBytes, staged, stagedBytes };
  }

  private stagedPath(uploadId: string): string {
    return join(this.root, 'staging', checkUploadId(uploadId));
  }

  private blobPath(sha256: string): string {
    checkHash(sha256);
    return join(this.root, 'sha256', sha256.slice(0, 2), sha256);
  }

  /** Renames a trash file back as its blob (replacing a copy committed meanwhile: the same bytes). */
  private async putBack(trash: string, blob: string): Promise<void> {
    await this.makeDirectory(join(blob, '..'));
    try {
      await rename(trash, blob);
    } catch (error) {
      // Another node's sweep already decided for it.
      if (!isMissing(error)) throw error;
    }
    await syncDirectory(join(blob, '..'));
  }

  private async makeDirectory(path: string): Promise<void> {
    await mkdir(path, { recursive: true, mode: 0o700 });
  }
}

async function* single(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}

/** Writes `chunks` to a new file (replacing one there), fsynced: what is renamed in after is whole. */
async function writeNew(path: string, chunks: AsyncIterable<Uint8Array>): Promise<number> {
  const handle = await open(path, 'w', 0o600);
  let position = 0;
  try {
    for await (const chunk of chunks) {
      await writeAll(handle, chunk, position);
      position += chunk.byteLength;
    }
    await handle.sync();
  } catch (error) {
    await handle.close();
    await unlinkIfThere(path);
    throw error;
  }
  await handle.close();
  return position;
}

async function writeAll(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let written = 0;
  while (written < bytes.byteLength) {
    const { bytesWritten } = await handle.write(bytes, written, bytes.byteLength - written, position + written);
    written += bytesWritten;
  }
}

async function* readFile(path: string, range: ByteRange | undefined, missing: string): AsyncIterable<Uint8Array> {
  const handle = await openExisting(path, 'r', missing);
  const stream = handle.createReadStream(range === undefined ? {} : { start: range.start, end: range.end });
  try {
    for await (const chunk of stream) yield chunk as Buffer;
  } finally {
    stream.destroy();
    // The stream closes its handle (autoClose); closing twice would throw.
  }
}

async function openExisting(path: string, flags: string, missing: string): Promise<FileHandle> {
  try {
    return await open(path, flags);
  } catch (error) {
    if (isMissing(error)) throw new BlobStoreError('not_found', missing);
    throw error;
  }
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    const info = await stat(path);
    return info.isFile() ? info.size : undefined;
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

async function namesIn(directory: string): Promise<string[]> {
  try {
    return (await readdir(directory)).sort();
  } catch (error) {
    if (isMissing(error)) return [];
    throw error;
  }
}

/** Whether there was a file to delete. */
async function unlinkIfThere(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (error) {
    if (!isMissing(error)) throw error;
    return false;
  }
}

/** Dates the file now; false when it is not there (collection may move a blob away between two looks). */
async function touch(path: string): Promise<boolean> {
  const now = new Date();
  try {
    await utimes(path, now, now);
    return true;
  } catch (error) {
    if (isMissing(error)) return false;
    throw error;
  }
}

/** Makes a rename in `directory` durable. Some filesystems refuse to fsync a directory: the rename still happened. */
async function syncDirectory(directory: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(directory, 'r');
    await handle.sync();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'EBADF') throw error;
  } finally {
    await handle?.close();
  }
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException)?.code === 'ENOENT';
}
