import type { Command } from 'commander';
import { createProviders } from '../push/providers.js';
import { CliError, type DatabaseOptions, EXIT_USAGE, examples, parsePositiveInteger, resolveConfig, withAdmin, withDatabaseOptions } from './common.js';

export function addPushCommands(program: Command): void {
  const push = program.command('push').description('push notifications (APNs, FCM)');

  const test = withDatabaseOptions(
    push
      .command('test')
      .description("send a test notification to a device now, through the configured provider, and print the provider's answer")
      .argument('<device-id>', 'device id (from `chatd device list USER`)'),
  ).action(async (id: string, options: DatabaseOptions) => {
    const deviceId = parsePositiveInteger(id, 'device id');
    const config = resolveConfig(options);
    const providers = await createProviders(config);
    try {
      await withAdmin(options, async ({ admin }) => {
        const { registration, badge } = await admin.pushTarget(deviceId);
        const provider = providers.get(registration.platform);
        if (!provider) {
          throw new CliError(`device ${deviceId} has an ${registration.platform} token, but [${registration.platform}] is not configured`, EXIT_USAGE);
        }
        const outcome = await provider.send(registration, {
          title: 'chatd',
          body: 'Test notification from chatd',
          badge,
          collapseKey: 'chatd-test',
          data: { test: 'true' },
          expiresAt: Date.now() + 3_600_000,
        });
        switch (outcome.kind) {
          case 'sent':
            console.log(`sent to device ${deviceId} (${registration.platform}): accepted by the provider${outcome.id ? `, id ${outcome.id}` : ''}; badge ${badge}`);
            return;
          case 'dead_token': {
            const removed = await admin.dropPushToken(deviceId, registration.token);
            throw new CliError(`not sent: the provider says the token is no longer valid (${outcome.reason})${removed ? `; removed it from device ${deviceId}` : ''}`);
          }
          case 'retry':
            throw new CliError(`not sent: the provider failed for now (${outcome.reason}); try again later`);
          case 'failed':
            throw new CliError(`not sent: the provider refused it (${outcome.reason})`);
        }
      });
    } finally {
      await Promise.all([...providers.values()].map((provider) => provider.close()));
    }
  });
  examples(test, ['chatd push test 42', 'chatd push test 42 --config /etc/chatd/config.toml']);
}
