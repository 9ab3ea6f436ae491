import { createHash } from 'node:crypto';
import type { Clock, Timer } from '../../clock.js';
import type { Logger } from '../../log.js';
import type { AttachmentStorage } from '../../storage/ports/attachments.js';
import { type BlobStore, BlobStoreError } from '../../storage/ports/blobs.js';

export interface CountAndBytes {
  readonly count: number;
  readonly bytes: number;
}

/** What one pass removed, or in a dry run would remove. */
export interface CollectionReport {
  readonly dryRun: boolean;
  /** Uploads not finished before they expired: rows, and their staged bytes. */
  readonly incompleteUploads: CountAndBytes;
  /** Finished uploads no message referenced within the grace: rows only; their content becomes an orphan (below). */
  readonly unreferencedUploads: number;
  /** Content no upload names any more, recorded now: deleted by a pass after the grace. */
  readonly orphanedBlobs: number;
  /** Orphans past the grace, deleted from the blob store. */
  readonly blobsDeleted: CountAndBytes;
  /** Staged files whose upload row is gone (an upload deleted while a node was down, a crash), or is finished (a crash before the staged copy was deleted). */
  readonly strayStaged: CountAndBytes;
  /**
   * Sweep only: blobs no upload names and collection never recorded (a crash between storing and completing,
   * an older database restored), older than the grace; and blobs a stopped deletion left out of reach that no upload names.
   */
  readonly strayBlobs: CountAndBytes;
  /** Sweep only: blobs a stopped deletion left out of reach that an upload names, put back. */
  readonly restoredBlobs: number;
}

export interface CollectorDeps {
  readonly storage: AttachmentStorage;
  readonly blobs: BlobStore;
  readonly clock: Clock;
  /** attachments.gc_grace_hours in ms. */
  readonly graceMs: number;
  readonly log: Logger;
}

export interface RunOptions {
  readonly dryRun?: boolean;
  /**
   * Also list every blob for content no upload names (strayBlobs) and sweep
   * what a stopped deletion left out of reach: a read of the whole store and
   * of the database, so `chatd blobs gc` asks for it and the server's timer
   * does not.
   */
  readonly sweep?: boolean;
  /** Told of each step, for the CLI's progress lines. */
  readonly progress?: (message: string) => void;
}

/** Blobs asked about in one namedBlobs query by the sweep. */
const NAMED_BATCH = 500;

/** A deletion moved a blob out of reach this long ago at least: it stopped (a deleteBlob decides in one query). */
const TRASH_MIN_AGE_MS = 10 * 60_000;

/** deleteBlob's last look, after the blob is out of reach: no upload names it. */
function stillUnnamed(storage: AttachmentStorage, sha256: string): () => Promise<boolean> {
  return async () => !(await storage.blobNamed(sha256));
}

async function hashOf(chunks: AsyncIterable<Uint8Array>): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of chunks) hash.update(chunk);
  return hash.digest('hex');
}

/** Orphans forgotten at a time, so an error part-way loses little work (a deleted blob's orphan row is harmless: deleting again is). */
const FORGET_BATCH = 100;

/**
 * Collection of attachments (docs/attachments.md, "Storage, collection and
 * backups"). One pass:
 *
 * 1. storage.collect: uploads past their expiry unfinished, finished ones no
 *    message referenced within the grace; content they alone named becomes an
 *    orphan, dated now.
 * 2. The expired uploads' staged bytes are deleted.
 * 3. Orphans older than the grace are deleted from the blob store, then
 *    forgotten. Never a blob younger than the grace: an upload that has just
 *    been committed against that content (deduplicated) makes it young
 *    again before its row says complete. Every delete takes its last look
 *    at the database (deleteBlob's stillUnnamed) with the blob out of reach,
 *    and a finishing upload checks the blob after its row names it: one of
 *    the two always sees the other, so named content is never lost.
 * 4. Staged files with no upload row, or of a finished upload (committed
 *    first when its blob is missing and they are that content).
 * 5. Only with `sweep` (chatd blobs gc; it reads the whole store): blobs no
 *    upload names that are neither orphans (step 3 has them) nor younger
 *    than the grace.
 * 6. What a deletion that stopped midway left in the store's trash: put
 *    back when named, deleted otherwise (every pass: one small directory).
 *
 * The grace is what makes a backup of the database followed by a copy of the
 * blobs directory consistent: content the database named when it was copied
 * is deleted no sooner than a grace after. Several nodes may collect at once:
 * the database decides in its transaction, and deleting a file that another
 * node deleted is harmless.
 */
export class Collector {
  private timer: Timer | undefined;
  /** The pass under way: the next waits for it, and the timer skips a tick while it runs. */
  private running: Promise<CollectionReport> | undefined;
  /** The timer's last tick, logging included. */
  private ticking: Promise<void> | undefined;

  constructor(private readonly deps: CollectorDeps) {}

  /** One pass at the clock's time; a pass under way is waited for first (passes never overlap). */
  async run(options: RunOptions = {}): Promise<CollectionReport> {
    while (this.running !== undefined) await this.running.catch(() => undefined);
    const pass = this.pass(options.dryRun === true, options.sweep === true, options.progress ?? (() => {}));
    this.running = pass;
    try {
      return await pass;
    } finally {
      this.running = undefined;
    }
  }

  /** Runs a pass every `intervalMs` (attachments.gc_interval_minutes), skipping a tick while one is under way. */
  start(intervalMs: number): void {
    this.timer ??= this.deps.clock.setInterval(() => {
      if (this.running === undefined) this.ticking = this.tick();
    }, intervalMs);
  }

  /** Stops the timer; resolves once a pass under way has ended (so the storage can be closed after). */
  async stop(): Promise<void> {
    if (this.timer !== undefined) this.deps.clock.clearTimer(this.timer);
    this.timer = undefined;
    await this.ticking;
    await this.running?.catch(() => undefined);
  }

  /** Never rejects: a failed pass is logged, and the next tick tries again. */
  private async tick(): Promise<void> {
    try {
      const report = await this.run();
      const removed = report.incompleteUploads.count + report.unreferencedUploads + report.blobsDeleted.count + report.strayStaged.count + report.strayBlobs.count + report.restoredBlobs;
      if (removed > 0 || report.orphanedBlobs > 0) this.deps.log.info({ collection: report }, 'attachments collected');
      else this.deps.log.debug({ collection: report }, 'attachments collected: nothing to remove');
    } catch (error) {
      this.deps.log.error({ err: error }, 'collecting attachments failed; the next pass tries again');
    }
  }

  /**
   * Whether the finished upload `id`'s content is in the blob store, after
   * committing its staged copy when it is not and the copy is that content
   * (a finish cut short after collection took the blob). False: keep the
   * staged file (another request is committing it).
   */
  private async stillStored(id: string, sha256: string): Promise<boolean> {
    const { blobs } = this.deps;
    if ((await blobs.blobSize(sha256)) !== undefined) return true;
    let hash: string;
    try {
      hash = await hashOf(blobs.readStaged(id));
    } catch (error) {
      if (error instanceof BlobStoreError && error.code === 'not_found') return false;
      throw error;
    }
    // Another content (the original of an image stored rewritten): nothing to restore from it.
    if (hash !== sha256) return true;
    try {
      await blobs.commitStaged(id, sha256);
    } catch (error) {
      if (error instanceof BlobStoreError && error.code === 'not_found') return false;
      throw error;
    }
    return true;
  }

  private async pass(dryRun: boolean, sweep: boolean, progress: (message: string) => void): Promise<CollectionReport> {
    const { storage, blobs, graceMs } = this.deps;
    const now = this.deps.clock.now();
    const youngSince = now - graceMs;

    progress('finding expired and unreferenced uploads');
    const collected = await storage.collect(now, graceMs, dryRun);

    progress(`removing the staged bytes of ${collected.incomplete.length} expired uploads`);
    let incompleteBytes = 0;
    for (const id of collected.incomplete) {
      incompleteBytes += (await blobs.stagedSize(id)) ?? 0;
      if (!dryRun) await blobs.deleteStaged(id);
    }

    const due = await storage.orphansDue(now, graceMs);
    progress(`deleting ${due.length} orphaned blobs past the grace`);
    const deleted = { count: 0, bytes: 0 };
    const done = new Set<string>();
    let forget: string[] = [];
    try {
      for (const sha256 of due) {
        const writtenAt = await blobs.blobWrittenAt(sha256);
        if (writtenAt !== undefined && writtenAt > youngSince) continue;
        // Named again since storage.collect made it an orphan, or already gone: only forgotten.
        if (writtenAt !== undefined && !(await storage.blobNamed(sha256))) {
          const size = await blobs.blobSize(sha256);
          if ((dryRun || (await blobs.deleteBlob(sha256, stillUnnamed(storage, sha256))) === 'deleted') && size !== undefined) {
            deleted.count += 1;
            deleted.bytes += size;
          }
        }
        done.add(sha256);
        forget.push(sha256);
        if (!dryRun && forget.length >= FORGET_BATCH) {
          await storage.forgetOrphans(forget);
          forget = [];
        }
      }
    } finally {
      if (!dryRun && forget.length > 0) await storage.forgetOrphans(forget);
    }

    progress('looking for staged files with no upload, or of a finished upload');
    const incomplete = new Set(collected.incomplete);
    const strayStaged = { count: 0, bytes: 0 };
    for await (const id of blobs.listStaged()) {
      if (incomplete.has(id)) continue;
      const row = await storage.upload(id);
      if (row !== undefined && (row.completedAt === null || row.blob === null)) continue;
      // No row (deleted while a node was down), or a finished one (a node stopped between completing it and
      // deleting the original, which may hold the location an image was stripped of).
      const size = (await blobs.stagedSize(id)) ?? 0;
      if (!dryRun) {
        if (row?.blob && !(await this.stillStored(id, row.blob.sha256))) continue;
        await blobs.deleteStaged(id);
      }
      strayStaged.count += 1;
      strayStaged.bytes += size;
    }

    const strayBlobs = { count: 0, bytes: 0 };
    let restoredBlobs = 0;
    if (sweep) {
      progress('looking for blobs no upload names');
      // Every orphan, due or not: those are step 3's, dated by their orphan row rather than by the file.
      const orphans = new Set([...(await storage.orphansDue(Number.MAX_SAFE_INTEGER, 0)), ...collected.orphanedBlobs]);
      let batch: Array<{ sha256: string; size: number }> = [];
      const settle = async (): Promise<void> => {
        const named = await storage.namedBlobs(batch.map((blob) => blob.sha256));
        for (const blob of batch) {
          if (named.has(blob.sha256)) continue;
          if (dryRun || (await blobs.deleteBlob(blob.sha256, stillUnnamed(storage, blob.sha256))) === 'deleted') {
            strayBlobs.count += 1;
            strayBlobs.bytes += blob.size;
          }
        }
        batch = [];
      };
      for await (const blob of blobs.listBlobs()) {
        if (done.has(blob.sha256) || orphans.has(blob.sha256)) continue;
        const writtenAt = await blobs.blobWrittenAt(blob.sha256);
        if (writtenAt === undefined || writtenAt > youngSince) continue;
        batch.push(blob);
        if (batch.length >= NAMED_BATCH) await settle();
      }
      await settle();
    }

    // Every pass, not only the sweep: it reads one small directory, and a blob a stopped deletion left
    // there while an upload names it must come back before anyone asks for it.
    progress('looking for blobs a stopped deletion left out of reach');
    if (!dryRun) {
      const trash = await blobs.sweepTrash(now - TRASH_MIN_AGE_MS, (sha256) => storage.blobNamed(sha256));
      restoredBlobs = trash.restored;
      strayBlobs.count += trash.deleted;
      strayBlobs.bytes += trash.deletedBytes;
    }

    return {
      dryRun,
      incompleteUploads: { count: collected.incomplete.length, bytes: incompleteBytes },
      unreferencedUploads: collected.unreferenced.length,
      orphanedBlobs: collected.orphanedBlobs.length,
      blobsDeleted: deleted,
      strayStaged,
      strayBlobs,
      restoredBlobs,
    };
  }
}

/** A collector with its timer running, as the server starts it (app wiring). */
export function startCollector(deps: CollectorDeps, intervalMs: number): Collector {
  const collector = new Collector(deps);
  collector.start(intervalMs);
  return collector;
}
