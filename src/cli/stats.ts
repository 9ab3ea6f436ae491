import type { Command } from 'commander';
import { type DatabaseOptions, examples, printJson, withAdmin, withDatabaseOptions } from './common.js';

export function addStatsCommand(program: Command): void {
  const stats = withDatabaseOptions(
    program.command('stats').description('counts of users, devices, threads, messages and push notifications, and the database size').option('--json', 'machine-readable output'),
  ).action((options: DatabaseOptions & { json?: boolean }) =>
    withAdmin(options, async ({ admin, figures }) => {
      const counts = await admin.counts();
      const push = await admin.pushCounts();
      const database = await figures();
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
      console.log(`database:  ${database.location}, ${mib} MiB, schema version ${report.schema_version}`);
    }),
  );
  examples(stats, ['chatd stats', 'chatd stats --json']);
}
