import type { Command } from 'commander';
import { systemClock } from '../clock.js';
import { createLogger } from '../log.js';
import { type CollectionReport, Collector } from '../services/attachments/collector.js';
import { CliError, type DatabaseOptions, examples, printJson, resolveConfig, withAdmin, withDatabaseOptions } from './common.js';

/** `chatd blobs …`: the attachments' blob store (docs/attachments.md, "Storage, collection and backups"). */
export function addBlobsCommands(program: Command): void {
  const blobs = program.command('blobs').description("attachments' stored content: collection of what no message needs");
  const gc = withDatabaseOptions(
    blobs
      .command('gc')
      .description(
        'run one full pass of collection now: what the server does every attachments.gc_interval_minutes (expired uploads, uploads no message referenced, content they alone named after attachments.gc_grace_hours), plus a sweep of the whole blob store for content no upload names',
      )
      .option('--dry-run', 'report what would be removed, changing nothing')
      .option('--json', 'machine-readable output'),
  ).action((options: DatabaseOptions & { dryRun?: boolean; json?: boolean }) => {
    const config = resolveConfig(options);
    return withAdmin(options, async ({ attachments, blobs: store }) => {
      const collector = new Collector({
        storage: attachments,
        blobs: store,
        clock: systemClock,
        graceMs: config.attachments.gc_grace_hours * 3_600_000,
        // Nothing is logged by a pass run by hand (run() reports or throws); the server's timer logs.
        log: createLogger('silent'),
      });
      process.stderr.write(`collecting attachments in ${store.root}${options.dryRun ? ' (dry run: nothing is changed)' : ''}\n`);
      const report = await collector
        // The sweep reads every blob and asks the database about each: by hand, never on the server's timer.
        .run({ dryRun: options.dryRun === true, sweep: true, progress: (step) => process.stderr.write(`  ${step} …\n`) })
        .catch((error: unknown) => blobStoreFailure(error, store.root));
      if (options.json) return printJson(toJson(report));
      for (const line of describeCollection(report, config.attachments.gc_grace_hours)) console.log(line);
    });
  });
  examples(gc, ['chatd blobs gc --dry-run', 'chatd blobs gc', 'chatd blobs gc --data /var/lib/chatd --json']);
}

/**
 * A file system error from the blob store (EACCES, ENOTDIR, EIO…) as one clear
 * line; anything else (the database) goes on to reportFailure as it is. What
 * was deleted before the error stays deleted: the next pass goes on from there.
 */
export function blobStoreFailure(error: unknown, root: string): never {
  if (error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string' && (error as NodeJS.ErrnoException).syscall !== undefined) {
    throw new CliError(`the blob store in ${root} failed: ${error.message}; fix its files or permissions and run the command again`);
  }
  throw error;
}

/** The command's JSON keys (scripts read them): written out here, not the collector's names. */
function toJson(report: CollectionReport): Record<string, unknown> {
  const pair = (figures: { count: number; bytes: number }) => ({ count: figures.count, bytes: figures.bytes });
  return {
    dry_run: report.dryRun,
    expired_uploads: pair(report.incompleteUploads),
    unreferenced_uploads: report.unreferencedUploads,
    orphaned_blobs: report.orphanedBlobs,
    deleted_blobs: pair(report.blobsDeleted),
    stray_staged: pair(report.strayStaged),
    stray_blobs: pair(report.strayBlobs),
    restored_blobs: report.restoredBlobs,
    freed_bytes: freedBytes(report),
  };
}

function freedBytes(report: CollectionReport): number {
  return report.incompleteUploads.bytes + report.blobsDeleted.bytes + report.strayStaged.bytes + report.strayBlobs.bytes;
}

export function describeCollection(report: CollectionReport, graceHours: number): string[] {
  const pair = (figures: { count: number; bytes: number }) => `${figures.count} (${formatBytes(figures.bytes)})`;
  const rows: Array<[string, string]> = [
    ['expired uploads', pair(report.incompleteUploads)],
    ['unreferenced uploads', String(report.unreferencedUploads)],
    ['unused content', pair(report.blobsDeleted)],
    ['staged files of no upload or a finished one', pair(report.strayStaged)],
    ['content no upload names', pair(report.strayBlobs)],
  ];
  const width = Math.max(...rows.map(([label]) => label.length)) + 1;
  return [
    report.dryRun ? 'would remove (dry run):' : 'removed:',
    ...rows.map(([label, value]) => `  ${`${label}:`.padEnd(width)} ${value}`),
    ...(report.restoredBlobs > 0 ? [`content put back (a deletion stopped midway, an upload names it): ${report.restoredBlobs}`] : []),
    `newly unused content: ${report.orphanedBlobs} (deleted in ${graceHours} h unless an upload names it again)`,
    `${report.dryRun ? 'would free' : 'freed'}: ${formatBytes(freedBytes(report))}`,
  ];
}

/** 1536 → "1.5 KiB": sizes as people read them (the JSON has the exact bytes). */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}
