import type { Command } from 'commander';
import { type DatabaseOptions, examples, formatTime, parsePositiveInteger, printJson, printTable, withAdmin, withDatabaseOptions } from './common.js';

export function addDeviceCommands(program: Command): void {
  const device = program.command('device').description("manage users' devices (logins)");

  const list = withDatabaseOptions(
    device
      .command('list')
      .description("list a user's devices")
      .argument('<username>')
      .option('--all', 'include revoked devices')
      .option('--json', 'machine-readable output'),
  ).action((username: string, options: DatabaseOptions & { all?: boolean; json?: boolean }) =>
    withAdmin(options, async ({ admin }) => {
      const devices = await admin.listDevices(username, { includeRevoked: options.all ?? false });
      if (options.json) {
        return printJson(
          devices.map((d) => ({
            id: d.id,
            name: d.name,
            platform: d.platform,
            created_at: d.createdAt,
            last_seen_at: d.lastSeenAt,
            revoked_at: d.revokedAt,
          })),
        );
      }
      printTable(
        ['ID', 'NAME', 'PLATFORM', 'CREATED', 'LAST SEEN', 'STATUS'],
        devices.map((d) => [d.id, d.name, d.platform, formatTime(d.createdAt), formatTime(d.lastSeenAt), d.revokedAt === null ? 'active' : 'revoked']),
      );
    }),
  );
  examples(list, ['chatd device list alice', 'chatd device list alice --all --json']);

  const revoke = withDatabaseOptions(
    device.command('revoke').description('log a device out: its token stops working').argument('<id>', 'device id (from `chatd device list`)'),
  ).action((id: string, options: DatabaseOptions) =>
    withAdmin(options, async ({ admin }) => {
      await admin.revokeDevice(parsePositiveInteger(id, 'device id'));
      console.log(`device ${id} revoked`);
    }),
  );
  examples(revoke, ['chatd device revoke 42']);
}
