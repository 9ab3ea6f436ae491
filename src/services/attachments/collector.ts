import type { Clock, Timer } from '../../clock.js';
import type { Logger } from '../../log.js';
import type { AttachmentStorage } from '../../storage/ports/attachments.js';
import type { BlobStore } from '../../storage/ports/blobs.js';

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
  /** Staged files whose upload row is gone (an upload deleted while a node was down, a crash). */
  readonly strayStaged: CountAndBytes;
  /** Blobs no upload names and collection never recorded (a crash between storing and completing, an older database restored), older than the grace. */
  readonly strayBlobs: CountAndBytes;
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
  /** Told of each step, for the CLI's progress lines. */
  readonly progress?: (message: string) => void;
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
 *    again before its row says complete.
 * 4. Staged files with no upload row, and blobs no upload names that are
 *    neither orphans (step 3 has them) nor younger than the grace.
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
    const pass = this.pass(options.dryRun === true, options.progress ?? (() => {}));
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
      const removed = report.incompleteUploads.count + report.unreferencedUploads + report.blobsDeleted.count + report.strayStaged.count + report.strayBlobs.count;
      if (removed > 0 || report.orphanedBlobs > 0) this.deps.log.info({ collection: report }, 'attachments collected');
      else this.deps.log.debug({ collection: report }, 'attachments collected: nothing to remove');
    } catch (error) {
      this.deps.log.error({ err: error }, 'collecting attachments failed; the next pass tries again');
    }
  }

  private async pass(dryRun: boolean, progress: (message: string) => void): Promise<CollectionReport> {
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
        // Named again since storage.collect made it an orphan (completeUpload takes it out of
        // blob_orphans too; this is the last look before the file goes).
        if (await storage.blobNamed(sha256)) {
          forget.push(sha256);
          continue;
        }
        const size = await blobs.blobSize(sha256);
        if (!dryRun) await blobs.deleteBlob(sha256);
        done.add(sha256);
        forget.push(sha256);
        if (size !== undefined) {
          deleted.count += 1;
          deleted.bytes += size;
        }
        if (!dryRun && forget.length >= FORGET_BATCH) {
          await storage.forgetOrphans(forget);
          forget = [];
        }
      }
    } finally {
      if (!dryRun && forget.length > 0) await storage.forgetOrphans(forget);
    }

    progress('looking for staged files with no upload');
    const incomplete = new Set(collected.incomplete);
    const strayStaged = { count: 0, bytes: 0 };
    for await (const id of blobs.listStaged()) {
      if (incomplete.has(id) || (await storage.upload(id)) !== undefined) continue;
      strayStaged.count += 1;
      strayStaged.bytes += (await blobs.stagedSize(id)) ?? 0;
      if (!dryRun) await blobs.deleteStaged(id);
    }

    progress('looking for blobs no upload names');
    // Every orphan, due or not: those are step 3's, dated by their orphan row rather than by the file.
    const orphans = new Set([...(await storage.orphansDue(Number.MAX_SAFE_INTEGER, 0)), ...collected.orphanedBlobs]);
    const strayBlobs = { count: 0, bytes: 0 };
    for await (const blob of blobs.listBlobs()) {
      if (done.has(blob.sha256) || orphans.has(blob.sha256)) continue;
      const writtenAt = await blobs.blobWrittenAt(blob.sha256);
      if (writtenAt === undefined || writtenAt > youngSince) continue;
      if (await storage.blobNamed(blob.sha256)) continue;
      strayBlobs.count += 1;
      strayBlobs.bytes += blob.size;
      if (!dryRun) await blobs.deleteBlob(blob.sha256);
    }

    return {
      dryRun,
      incompleteUploads: { count: collected.incomplete.length, bytes: incompleteBytes },
      unreferencedUploads: collected.unreferenced.length,
      orphanedBlobs: collected.orphanedBlobs.length,
      blobsDeleted: deleted,
      strayStaged,
      strayBlobs,
    };
  }
}

/** A collector with its timer running, as the server starts it (app wiring). */
export function startCollector(deps: CollectorDeps, intervalMs: number): Collector {
  const collector = new Collector(deps);
  collector.start(intervalMs);
  return collector;
}
