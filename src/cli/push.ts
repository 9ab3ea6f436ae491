import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { createProviders } from '../push/providers.js';
import { VAPID_FILE, createDataDirectory, generateVapidKeys, readVapidFile, writeVapidFile } from '../push/vapid.js';
import { CliError, type DatabaseOptions, EXIT_USAGE, examples, parsePositiveInteger, resolveConfig, withAdmin, withDatabaseOptions } from './common.js';

export function addPushCommands(program: Command): void {
  const push = program.command('push').description('push notifications (APNs, FCM, Web Push)');

  const test = withDatabaseOptions(
    push
      .command('test')
      .description("send a test notification to a device now, through the configured provider, and print the provider's answer")
      .argument('<device-id>', 'device id (from `chatd device list USER`)'),
  ).action(async (id: string, options: DatabaseOptions) => {
    const deviceId = parsePositiveInteger(id, 'device id');
    const config = resolveConfig(options);
    await withAdmin(options, async ({ admin }) => {
      // After the database opened: a mistyped --data is refused before anything (a VAPID key pair) is made there.
      const providers = await createProviders(config);
      try {
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
          case 'provider_error':
            throw new CliError(`not sent: the provider refuses this server's credentials or settings, whatever the token (${outcome.reason})`);
        }
      } finally {
        await Promise.all([...providers.values()].map((provider) => provider.close()));
      }
    });
  });
  examples(test, ['chatd push test 42', 'chatd push test 42 --config /etc/chatd/config.toml']);

  const vapid = withDatabaseOptions(
    push
      .command('vapid')
      .description(
        "make a VAPID key pair for Web Push and print its public key. Writes it (0600) to --out, or where the server reads it (webpush.vapid_file, else vapid.json in the data directory); never replaces an existing file without --force",
      )
      .option('--out <file>', 'where to write the pair')
      .option('--force', 'replace an existing pair: browsers subscribed with the old public key get nothing until they subscribe again')
      .option('--json', 'machine-readable output: {"public_key", "file"}'),
  ).action((options: DatabaseOptions & { out?: string; force?: boolean; json?: boolean }) => {
    const file = resolve(options.out ?? serverVapidFile(options));
    // The data directory may not exist before the first start: made as the server makes it (0700).
    if (options.out === undefined) createDataDirectory(dirname(file));
    const keys = generateVapidKeys();
    let written: boolean;
    try {
      written = writeVapidFile(file, keys, { overwrite: options.force === true });
    } catch (error) {
      throw new CliError(`cannot write ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
    if (!written) {
      let existing = '';
      try {
        existing = `; its public key is ${readVapidFile(file, file).publicKey}`;
      } catch {
        // Not a pair: say only that it exists.
      }
      throw new CliError(`${file} exists${existing}. Not replaced: browsers subscribed with it would get nothing until they subscribe again; add --force to replace it anyway`);
    }
    if (options.json) console.log(JSON.stringify({ public_key: keys.publicKey, file }));
    else console.log(`VAPID key pair written to ${file} (mode 0600; keep it private and back it up)\npublic key: ${keys.publicKey}`);
  });
  examples(vapid, ['chatd push vapid', 'chatd push vapid --out /etc/chatd/vapid.json --json', 'chatd push vapid --data /var/lib/chatd --force']);
}

/** Where the server reads its pair: webpush.vapid_file, else vapid.json in the data directory. */
function serverVapidFile(options: DatabaseOptions): string {
  const config = resolveConfig(options);
  return config.webpush.vapid_file !== '' ? config.webpush.vapid_file : resolve(config.storage.dir, VAPID_FILE);
}
