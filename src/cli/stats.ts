import type { Command } from 'commander';
import { blobStoreFailure, formatBytes } from './blobs.js';
import { type DatabaseOptions, examples, printJson, withAdmin, withDatabaseOptions } from './common.js';

export function addStatsCommand(program: Command): void {
  const stats = withDatabaseOptions(
    program.command('stats').description('counts of users, devices, threads, messages, push notifications and attachments, and the sizes of the database and the blob store').option('--json', 'machine-readable output'),
  ).action((options: DatabaseOptions & { json?: boolean }) =>
    withAdmin(options, async ({ admin, figures, attachments, blobs }) => {
      const counts = await admin.counts();
      const push = await admin.pushCounts();
      const database = await figures();
      const uploads = await attachments.stats();
      // What is on disk (thumbnails and content not yet collected included), from the blob store itself.
      const stored = await blobs.stats().catch((error: unknown) => blobStoreFailure(error, blobs.root));
      // The JSON keys are the command's output format (scripts read them): written out here, not the port's names.
      const report = {
        users: counts.users,
        disabled_users: counts.disabledUsers,
        devices: counts.devices,
        threads: counts.threads,
        messages: counts.messages,
        inbox_entries: counts.inboxEntries,
        invites_open: counts.invitesOpen,
        push: { sent: push.sent, failed: push.failed, dropped_tokens: push.droppedTokens, skipped: push.skipped, queued: push.queued },
        attachments: {
          uploads: uploads.uploads,
          incomplete_uploads: uploads.incompleteUploads,
          // Distinct content the uploads name (files and thumbnails).
          blobs: uploads.blobs,
          // What users sent, before deduplication, and what storing each distinct file once saved of it.
          uploaded_bytes: uploads.uploadedBytes,
          deduplication_saved_bytes: Math.max(0, uploads.uploadedBytes - uploads.blobBytes),
          blob_store: { directory: blobs.root, blobs: stored.blobs, bytes: stored.blobBytes, staged_uploads: stored.staged, staged_bytes: stored.stagedBytes },
        },
        database_bytes: database.bytes,
        schema_version: database.schemaVersion,
        epoch: database.epoch,
        // The SQLite file, or the PostgreSQL URL without its password.
        database: database.location,
        engine: database.engine,
      };
      if (options.json) return printJson(report);
      const mib = (report.database_bytes / 1024 / 1024).toFixed(2);
      console.log(`users:     ${counts.users} (${counts.disabledUsers} disabled)`);
      console.log(`devices:   ${counts.devices} logged in`);
      console.log(`threads:   ${counts.threads}`);
      console.log(`messages:  ${counts.messages} (${counts.inboxEntries} waiting in offline inboxes)`);
      console.log(`invites:   ${counts.invitesOpen} usable`);
      console.log(
        `push:      ${push.sent} sent, ${push.failed} failed, ${push.droppedTokens} dead tokens removed, ${push.skipped} not needed, ${push.queued} queued`,
      );
      const saved = report.attachments.deduplication_saved_bytes;
      console.log(
        `uploads:   ${uploads.uploads} (${uploads.incompleteUploads} unfinished), ${formatBytes(uploads.uploadedBytes)} uploaded, ${formatBytes(saved)} saved by storing each content once`,
      );
      console.log(
        `blobs:     ${uploads.blobs} named by uploads; on disk ${stored.blobs} blobs, ${formatBytes(stored.blobBytes)}, and ${stored.staged} uploads staging ${formatBytes(stored.stagedBytes)} (${blobs.root})`,
      );
      console.log(`database:  ${database.location}, ${mib} MiB, schema version ${report.schema_version}`);
    }),
  );
  examples(stats, ['chatd stats', 'chatd stats --json']);
}
