import { createHash } from 'node:crypto';
import type { Clock } from '../../clock.js';
import { ChatError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { AttachmentStorage, CompletedBlob, UploadRow } from '../../storage/ports/attachments.js';
import { type BlobStore, BlobStoreError } from '../../storage/ports/blobs.js';
import type { RateLimitStore } from '../limits/rate-limit-store.js';
import type { Principal } from '../types.js';
import type { HeifStripOutcome, RewritableFile } from './heif-metadata.js';
import { isUploadId, newUploadId } from './ids.js';
import type { UploadMetadata } from './upload-metadata.js';
import { narrowByDeclared } from './sniff.js';

/**
 * The rules of uploads (tus 1.0, docs/attachments.md "Uploading"): who may
 * start one and how large, where the bytes go, and what happens when the last
 * byte arrives (the finish pipeline: type, image facts, hash, deduplication).
 * Knows no HTTP: the routes in transport/http/uploads.ts translate.
 *
 * An upload is complete when its staged bytes reach its length, and finished
 * when its row says so (completedAt, blob). Between the two, whoever touches it
 * next (HEAD, PATCH, GET) runs the finish, so a node that crashed midway
 * leaves nothing a client cannot carry on from.
 */

export type Upload = UploadRow;

/** The image facts C2b's media functions find (services/attachments/media.ts), as this service uses them. */
export interface ImageFacts {
  /** Width and height (after orientation): absent, like the thumbnail, when the image could not be decoded within the limits. */
  readonly width?: number;
  readonly height?: number;
  /** The image without its metadata (location): what is stored and served instead (in memory: images are bounded). */
  readonly rewritten?: Uint8Array;
  readonly thumbnail?: { readonly bytes: Uint8Array; readonly width: number; readonly height: number };
  /** Set when metadata the image may carry could not be removed: it is stored as sent, and the log says why. */
  readonly metadataNotRemoved?: string;
}

export interface UploadMedia {
  /** How many first bytes sniff looks at. */
  readonly sniffBytes: number;
  /** The media type of content starting with `firstBytes` (magic numbers); application/octet-stream when unknown. */
  sniff(firstBytes: Uint8Array): string;
  /** Whether `mime` is in `allowedTypes` (attachments.allowed_types: "*" or a list such as "image/*, application/pdf"). */
  typeAllowed(mime: string, allowedTypes: string): boolean;
  /**
   * Width, height, thumbnail and a rewrite without metadata (within the pixel
   * and thumbnail limits it was made with); undefined when the content is no
   * image it can read within them (stored as a file). Never throws for bad
   * content; rejects when reading fails.
   */
  processImage(mime: string, read: () => AsyncIterable<Uint8Array>, options: { readonly keepMetadata: boolean }): Promise<ImageFacts | undefined>;
  /**
   * For an image processImage could not read: overwrites its metadata
   * (EXIF/XMP) with zeros in `file` without decoding it, where the format
   * allows (HEIF: HEIC, AVIF); undefined for other formats. 'unparsed': the
   * structure was not understood and the file is unchanged. Rejects only when
   * reading or writing fails.
   */
  stripWithoutDecoding(mime: string, file: RewritableFile): Promise<HeifStripOutcome | undefined>;
}

export interface UploadSettings {
  readonly maxFileBytes: number;
  readonly quotaBytes: number;
  readonly allowedTypes: string;
  readonly allowEncrypted: boolean;
  readonly uploadsPerMinute: number;
  readonly expiryMs: number;
}

export interface UploadServiceDeps {
  readonly storage: AttachmentStorage;
  readonly blobs: BlobStore;
  readonly clock: Clock;
  readonly limits: RateLimitStore;
  readonly media: UploadMedia;
  readonly settings: UploadSettings;
  readonly log: Logger;
}

/** Where an upload stands, as HEAD and PATCH answer it. */
export interface UploadProgress {
  readonly offset: number;
  readonly length: number;
  /** Unix ms; null once finished (a finished upload does not expire). */
  readonly expiresAt: number | null;
}

const OCTET_STREAM = 'application/octet-stream';

export class UploadService {
  /** PATCHes being read, by upload id: a new one for the same upload ends the old (a client that reconnected). */
  private readonly appending = new Map<string, { readonly abort: AbortController; readonly done: Promise<unknown> }>();
  /**
   * The newest PATCH to arrive, by upload id, numbered in arrival order. Storage round trips can let an older
   * PATCH (its connection already cut) reach the file after a newer one: it then gives up instead of ending
   * the newer one, whose client is the one still there.
   */
  private readonly newestPatch = new Map<string, number>();
  private patches = 0;
  /** Finishes running, by upload id: HEAD, PATCH and GET of one upload wait for the same one. */
  private readonly finishing = new Map<string, Promise<Upload>>();

  constructor(private readonly deps: UploadServiceDeps) {}

  /** Starts an upload of `length` bytes: checks size, encryption, the user's rate and quota, then creates the row and an empty staged file. */
  async create(principal: Principal, length: number, metadata: UploadMetadata): Promise<Upload> {
    const { settings, clock } = this.deps;
    if (length > settings.maxFileBytes) {
      throw new ChatError('file_too_large', `Upload-Length ${length} is over the largest file this server accepts (${settings.maxFileBytes} bytes)`, {
        details: { limit: 'attachments.max_file_bytes', max_bytes: settings.maxFileBytes },
      });
    }
    if (metadata.encrypted && !settings.allowEncrypted) {
      throw new ChatError('encrypted_not_allowed', 'this server does not accept end-to-end encrypted attachments (attachments.allow_encrypted)');
    }
    const rate = this.deps.limits.take(`upload:user:${principal.user.id}`, { burst: settings.uploadsPerMinute, refillMs: 60_000 });
    if (!rate.allowed) {
      throw new ChatError('rate_limited', `more than ${settings.uploadsPerMinute} uploads a minute from this user; try again in ${rate.retryAfterSeconds} s`, {
        retryAfterSeconds: rate.retryAfterSeconds,
        details: { limit: 'attachments.uploads_per_minute' },
      });
    }
    const id = newUploadId();
    const now = clock.now();
    // The staged file first: a row without one would read as an upload cut short (collection deletes either alone).
    await this.deps.blobs.createStaged(id);
    const outcome = await this.deps.storage.createUpload(
      { id, userId: principal.user.id, deviceId: principal.deviceId, length, ...metadata, now, expiresAt: now + settings.expiryMs },
      settings.quotaBytes,
    );
    if (outcome.kind === 'over_quota') {
      await this.deps.blobs.deleteStaged(id);
      throw new ChatError(
        'quota_exceeded',
        `this upload of ${length} bytes would pass your quota: ${outcome.usedBytes} of ${settings.quotaBytes} bytes are in use (every file you have stored counts; an upload never sent in a message is freed once collected, and an unfinished one when it expires)`,
        { details: { limit: 'attachments.user_quota_bytes', used_bytes: outcome.usedBytes, quota_bytes: settings.quotaBytes } },
      );
    }
    const row = await this.owned(principal, id);
    return length === 0 ? this.settle(row) : row;
  }

  /** HEAD: how many bytes the server holds. A complete upload not yet finished is finished first. */
  async progress(principal: Principal, id: string): Promise<UploadProgress> {
    const row = await this.settle(await this.owned(principal, id));
    if (row.completedAt !== null) return { offset: row.length, length: row.length, expiresAt: null };
    this.refuseExpired(row);
    return { offset: (await this.stagedSize(row)) ?? 0, length: row.length, expiresAt: row.expiresAt };
  }

  /**
   * PATCH: appends `body` at `offset`, reading it with backpressure, and runs
   * the finish when the last byte arrived. Bytes received before a body broke
   * off stay (the client resumes from them). A body past the upload's length
   * is cut there and answered `file_too_large`.
   */
  async append(principal: Principal, id: string, offset: number, body: ReadableStream<Uint8Array> | null): Promise<UploadProgress> {
    // Numbered before any await: the order the PATCHes came in, whatever order their round trips end in.
    const arrival = ++this.patches;
    this.newestPatch.set(id, arrival);
    try {
      return await this.appendInOrder(principal, id, offset, body, arrival);
    } finally {
      if (this.newestPatch.get(id) === arrival) this.newestPatch.delete(id);
    }
  }

  private async appendInOrder(principal: Principal, id: string, offset: number, body: ReadableStream<Uint8Array> | null, arrival: number): Promise<UploadProgress> {
    let row = await this.owned(principal, id);
    this.refuseSuperseded(id, arrival, body);
    // An earlier PATCH of this upload still being read is a connection the client has given up on: end it first.
    const earlier = this.appending.get(id);
    if (earlier) {
      earlier.abort.abort();
      await earlier.done.catch(() => {});
      row = await this.owned(principal, id);
    }
    row = await this.settle(row);
    if (row.completedAt !== null) {
      if (offset !== row.length) throw offsetMismatch(offset, row.length);
      await body?.cancel().catch(() => {});
      return { offset: row.length, length: row.length, expiresAt: null };
    }
    this.refuseExpired(row);
    const staged = (await this.stagedSize(row)) ?? 0;
    if (offset !== staged) throw offsetMismatch(offset, staged);
    // Checked again with nothing awaited until this PATCH is registered: no newer one can be reading meanwhile.
    this.refuseSuperseded(id, arrival, body);
    const abort = new AbortController();
    const bodyFailed = { value: false };
    const work = this.deps.blobs.appendStaged(id, offset, readBody(body, abort.signal, bodyFailed), row.length);
    const entry = { abort, done: work };
    this.appending.set(id, entry);
    let size: number;
    try {
      size = await work;
    } catch (error) {
      const failure = error instanceof BlobStoreError ? error.code : undefined;
      if (failure === 'offset_mismatch') throw offsetMismatch(offset, (await this.stagedSize(row)) ?? 0);
      if (failure === 'too_long') {
        throw new ChatError('file_too_large', `the body goes past Upload-Length (${row.length} bytes); the bytes up to it are kept`, {
          details: { offset: (await this.stagedSize(row)) ?? 0 },
        });
      }
      if (bodyFailed.value) {
        throw new ChatError('invalid_upload', 'the request body ended early (connection lost or replaced by a newer PATCH); the bytes received are kept: HEAD for the offset, then resume', {
          details: { offset: (await this.stagedSize(row)) ?? 0 },
        });
      }
      throw error;
    } finally {
      if (this.appending.get(id) === entry) this.appending.delete(id);
    }
    if (size < row.length) return { offset: size, length: row.length, expiresAt: row.expiresAt };
    const finished = await this.settle(row);
    return { offset: finished.length, length: finished.length, expiresAt: null };
  }

  /** A newer PATCH of the upload has come since this one: this one's client has moved on, and it ends here. */
  private refuseSuperseded(id: string, arrival: number, body: ReadableStream<Uint8Array> | null): void {
    if (this.newestPatch.get(id) === arrival) return;
    void body?.cancel().catch(() => {});
    throw new ChatError('invalid_upload', 'a newer PATCH of this upload came while this one waited: this one ended, nothing of it was written; HEAD for the offset, then resume');
  }

  /** DELETE (tus termination): the upload and its bytes go, unless a message carries it. */
  async terminate(principal: Principal, id: string): Promise<void> {
    const row = await this.owned(principal, id);
    this.appending.get(id)?.abort.abort();
    const outcome = await this.deps.storage.deleteUpload(id, this.deps.clock.now());
    if (outcome === 'referenced') throw new ChatError('attachment_referenced', 'a message carries this attachment: it can no longer be deleted');
    if (outcome === 'missing') throw notFound();
    // A finished upload's blob may be another upload's too: collection deletes it once no upload names it.
    if (row.completedAt === null) await this.deps.blobs.deleteStaged(id);
  }

  /** GET: the upload as the server sees it (finishing a complete one first), with its stored offset. */
  async describe(principal: Principal, id: string): Promise<{ readonly upload: Upload; readonly offset: number }> {
    const row = await this.settle(await this.owned(principal, id));
    if (row.completedAt !== null) return { upload: row, offset: row.length };
    return { upload: row, offset: (await this.stagedSize(row)) ?? 0 };
  }

  /** The caller's own upload, or not_found: another user's id is answered as an unknown one. */
  private async owned(principal: Principal, id: string): Promise<Upload> {
    const row = isUploadId(id) ? await this.deps.storage.upload(id) : undefined;
    if (!row || row.userId !== principal.user.id) throw notFound();
    return row;
  }

  private refuseExpired(row: Upload): void {
    if (row.expiresAt <= this.deps.clock.now()) {
      throw new ChatError('upload_expired', 'this upload was not finished in time (attachments.upload_expiry_hours); start a new one');
    }
  }

  /**
   * The staged size; a missing staged file of an unfinished upload (a node
   * on a file system without hard links that stopped between moving the
   * bytes in as a blob and recording it, see BlobStore.commitStaged) is
   * started again empty, so that the client sends the file again (the same
   * content is then stored once).
   */
  private async stagedSize(row: Upload): Promise<number | undefined> {
    const size = await this.deps.blobs.stagedSize(row.id);
    if (size !== undefined || row.completedAt !== null) return size;
    await this.deps.blobs.createStaged(row.id);
    return 0;
  }

  /** The row after finishing it, when its bytes are all there and it is not finished yet; as it is otherwise. */
  private async settle(row: Upload): Promise<Upload> {
    if (row.completedAt !== null) return row;
    const running = this.finishing.get(row.id);
    if (running) return running;
    if ((await this.deps.blobs.stagedSize(row.id)) !== row.length) return row;
    const finish = this.finish(row)
      .catch((error: unknown) => this.finishedElsewhere(row, error))
      .finally(() => this.finishing.delete(row.id));
    this.finishing.set(row.id, finish);
    return finish;
  }

  /**
   * A finish whose staged file went from under it (BlobStoreError
   * 'not_found'): another node finished the same upload meanwhile and moved
   * the staged file in as the blob. The row says how that ended: complete,
   * it is the answer; otherwise that node is still at it (or stopped midway),
   * and the client is told to ask again. Any other error passes.
   */
  private async finishedElsewhere(row: Upload, error: unknown): Promise<Upload> {
    if (!(error instanceof BlobStoreError && error.code === 'not_found')) throw error;
    const now = await this.deps.storage.upload(row.id);
    if (now === undefined) throw notFound();
    if (now.completedAt !== null) return now;
    throw new ChatError('unavailable', 'this upload is being finished by another request at the same moment; try again in a second', { retryAfterSeconds: 1 });
  }

  /**
   * The finish pipeline (docs/attachments.md, "What the server does with a
   * finished upload"): type from the content; for a plaintext image, its size,
   * a thumbnail and a copy without metadata; the hash of what is kept, stored
   * once; then the row. Each step may be run again: the staged bytes stay
   * until the row names the blob and the blob is checked to be there (a
   * rewritten image is stored as its own blob; commitStaged onto content
   * already stored keeps the staged copy), and are deleted only then.
   */
  private async finish(row: Upload): Promise<Upload> {
    const { blobs, media, settings, storage, clock } = this.deps;
    let mime = OCTET_STREAM;
    if (!row.encrypted) {
      const sniffed = media.sniff(row.length === 0 ? new Uint8Array(0) : await collect(blobs.readStaged(row.id, { start: 0, end: Math.min(row.length, media.sniffBytes) - 1 })));
      mime = narrowByDeclared(sniffed, row.declaredType);
      if (!media.typeAllowed(mime, settings.allowedTypes)) {
        await storage.deleteUpload(row.id, clock.now());
        await blobs.deleteStaged(row.id);
        throw new ChatError('type_not_allowed', `files of type ${mime} are not accepted here (attachments.allowed_types: ${settings.allowedTypes}); the upload is deleted`, {
          details: { mime },
        });
      }
    }
    const image = row.encrypted
      ? undefined
      : await media.processImage(mime, () => blobs.readStaged(row.id), { keepMetadata: row.keepMetadata });
    if (!row.encrypted && !image && !row.keepMetadata) await this.stripUndecodable(row, mime);
    if (image?.metadataNotRemoved) {
      this.deps.log.warn({ upload: row.id, mime, reason: image.metadataNotRemoved }, 'image metadata not removed: stored as sent, location data included if it had any');
    }
    const thumbnail = image?.thumbnail ? { ...(await blobs.putBlob(image.thumbnail.bytes)), width: image.thumbnail.width, height: image.thumbnail.height } : null;
    let stored: { sha256: string; size: number };
    if (image?.rewritten) {
      stored = await blobs.putBlob(image.rewritten);
    } else {
      stored = await hashOf(blobs.readStaged(row.id));
      if (stored.size !== row.length) throw new Error(`upload ${row.id}: ${stored.size} bytes staged, ${row.length} expected`);
      await blobs.commitStaged(row.id, stored.sha256);
    }
    const blob: CompletedBlob = {
      sha256: stored.sha256,
      size: stored.size,
      mime,
      width: image?.width ?? null,
      height: image?.height ?? null,
      thumbnail: thumbnail ? { sha256: thumbnail.sha256, width: thumbnail.width, height: thumbnail.height } : null,
    };
    const now = clock.now();
    // False: terminated or collected meanwhile. The blob just stored is then named by no upload: collection takes it.
    if (!(await storage.completeUpload(row.id, blob, now))) throw notFound();
    // Collection may have deleted the content between storing it and the row naming it (it decides only
    // after moving a blob out of reach, so from here on it keeps what the row names): store it again from
    // what is still at hand. Only then does the staged copy go.
    if ((await blobs.blobSize(stored.sha256)) === undefined) {
      if (image?.rewritten) await blobs.putBlob(image.rewritten);
      else if ((await blobs.stagedSize(row.id)) !== undefined) await blobs.commitStaged(row.id, stored.sha256);
    }
    if (thumbnail && image?.thumbnail && (await blobs.blobSize(thumbnail.sha256)) === undefined) await blobs.putBlob(image.thumbnail.bytes);
    await blobs.deleteStaged(row.id);
    return { ...row, completedAt: now, blob };
  }

  /**
   * An image sharp could not read (an iPhone's HEIC: the prebuilt libvips has
   * no HEVC decoder) keeps its location unless its metadata can be blanked
   * in the staged bytes, same length, before they are hashed. When its
   * structure is not understood it is stored as it came: the upload does not
   * fail for it, and the log says so (docs/attachments.md, "Images"). Run
   * again by a repeated finish, it blanks what is already blank.
   */
  private async stripUndecodable(row: Upload, mime: string): Promise<void> {
    const { blobs, media, log } = this.deps;
    const outcome = await media.stripWithoutDecoding(mime, {
      size: row.length,
      read: (range) => blobs.readStaged(row.id, range),
      rewrite: (chunks) => blobs.rewriteStaged(row.id, chunks),
    });
    if (outcome?.kind === 'unparsed') {
      log.warn({ upload: row.id, mime, reason: outcome.reason }, 'image metadata not removed: stored as sent, location data included if it had any');
    } else if (outcome && outcome.items > 0) {
      log.debug({ upload: row.id, mime, items: outcome.items }, 'image metadata blanked without decoding');
    }
  }
}

function notFound(): ChatError {
  return new ChatError('not_found', 'no such upload');
}

function offsetMismatch(sent: number, held: number): ChatError {
  return new ChatError('offset_mismatch', `Upload-Offset ${sent} is not where this upload stands (${held} bytes received); resume from ${held}`, {
    details: { offset: held },
  });
}

/**
 * The request body as chunks, one at a time (the blob store's write pulls
 * the next only when the last is written: backpressure). `failed` records
 * that the body itself broke (a client gone, or `signal`: a newer PATCH took
 * over), as opposed to the store.
 */
async function* readBody(body: ReadableStream<Uint8Array> | null, signal: AbortSignal, failed: { value: boolean }): AsyncGenerator<Uint8Array> {
  if (!body) return;
  const reader = body.getReader();
  const cancel = (): void => void reader.cancel(new Error('superseded by a newer PATCH of the same upload')).catch(() => {});
  signal.addEventListener('abort', cancel, { once: true });
  let finished = false;
  try {
    for (;;) {
      const result = await reader.read().catch((error: unknown) => {
        failed.value = true;
        throw error;
      });
      if (signal.aborted) {
        failed.value = true;
        throw new Error('superseded by a newer PATCH of the same upload');
      }
      if (result.done) {
        finished = true;
        return;
      }
      if (result.value.byteLength > 0) yield result.value;
    }
  } finally {
    signal.removeEventListener('abort', cancel);
    // Stopped early (the store had enough, or failed): tell the transport no more is wanted.
    if (!finished) await reader.cancel().catch(() => {});
  }
}

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}

async function hashOf(chunks: AsyncIterable<Uint8Array>): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of chunks) {
    hash.update(chunk);
    size += chunk.byteLength;
  }
  return { sha256: hash.digest('hex'), size };
}
