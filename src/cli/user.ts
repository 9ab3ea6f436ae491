import { type Command, Option } from 'commander';
import { userJson } from '../protocol/encode.js';
import { checkUsername } from '../services/account-rules.js';
import type { UserSummary } from '../services/admin.js';
import { CliError, type DatabaseOptions, EXIT_USAGE, examples, formatTime, printJson, printTable, withAdmin, withDatabaseOptions } from './common.js';
import { confirm, readPassword } from './prompt.js';

/** A user as `user list --json` prints it: the protocol's user, plus what only an operator sees. */
function summaryJson(user: UserSummary): Record<string, unknown> {
  return {
    ...userJson(user),
    disabled: user.disabled,
    created_at: user.createdAt,
    last_active_at: user.lastActiveAt,
  };
}

export function addUserCommands(program: Command): void {
  const user = program.command('user').description('manage accounts');

  const add = withDatabaseOptions(
    user
      .command('add')
      .description('create an account (the password is asked for, or read from standard input)')
      .argument('<username>')
      .option('--display-name <name>', 'name shown to others (default: the username)'),
  ).action((username: string, options: DatabaseOptions & { displayName?: string }) =>
    withAdmin(options, async ({ admin }) => {
      checkUsername(username); // before asking for a password that would be wasted
      const password = await readPassword(`Password for ${username}: `, { confirm: true });
      const created = await admin.addUser(username, password, options.displayName);
      console.log(`created user ${created.username} (id ${created.id})`);
    }),
  );
  examples(add, ['chatd user add alice', "printf '%s\\n' \"$PASSWORD\" | chatd user add alice --display-name 'Alice Liddell'"]);

  const list = withDatabaseOptions(user.command('list').description('list accounts').option('--json', 'machine-readable output')).action(
    (options: DatabaseOptions & { json?: boolean }) =>
      withAdmin(options, async ({ admin }) => {
        const users = await admin.listUsers();
        if (options.json) return printJson(users.map(summaryJson));
        printTable(
          ['ID', 'USERNAME', 'DISPLAY NAME', 'STATUS', 'CREATED', 'LAST ACTIVE'],
          users.map((u) => [u.id, u.username, u.displayName, u.disabled ? 'disabled' : 'active', formatTime(u.createdAt), formatTime(u.lastActiveAt)]),
        );
      }),
  );
  examples(list, ['chatd user list', 'chatd user list --json']);

  const passwd = withDatabaseOptions(
    user
      .command('passwd')
      .description("set a user's password (asked for, or read from standard input)")
      .argument('<username>')
      .option('--revoke-devices', 'also log out every device of the user'),
  ).action((username: string, options: DatabaseOptions & { revokeDevices?: boolean }) =>
    withAdmin(options, async ({ admin }) => {
      const password = await readPassword(`New password for ${username}: `, { confirm: true });
      const result = await admin.setPassword(username, password, { revokeDevices: options.revokeDevices ?? false });
      console.log(`password of ${username} changed${options.revokeDevices ? `; ${result.revokedDevices} device(s) logged out` : ''}`);
    }),
  );
  examples(passwd, ['chatd user passwd alice', 'chatd user passwd alice --revoke-devices']);

  for (const [name, disabled] of [
    ['disable', true],
    ['enable', false],
  ] as const) {
    const command = withDatabaseOptions(
      user
        .command(name)
        .description(
          disabled
            ? 'stop a user from logging in and log out all their devices for good (nothing else is deleted)'
            : 'let a disabled user log in again (with their password: the devices logged out stay logged out)',
        )
        .argument('<username>'),
    ).action((username: string, options: DatabaseOptions) =>
      withAdmin(options, async ({ admin }) => {
        const result = await admin.setDisabled(username, disabled);
        console.log(`user ${username} ${disabled ? `disabled; ${result.revokedDevices} device(s) logged out` : 'enabled'}`);
      }),
    );
    examples(command, [`chatd user ${name} alice`]);
  }

  const remove = withDatabaseOptions(
    user
      .command('delete')
      .description('delete an account: its devices are logged out and its password erased; the username stays reserved')
      .argument('<username>')
      .addOption(new Option('-y, --yes', 'do not ask for confirmation (needed when not on a terminal)')),
  ).action((username: string, options: DatabaseOptions & { yes?: boolean }) =>
    withAdmin(options, async ({ admin }) => {
      if (!options.yes && !(await confirm(`Delete user ${username}? This cannot be undone. [y/N] `))) {
        throw new CliError(process.stdin.isTTY ? 'not deleted' : 'refusing to delete without --yes when not on a terminal', EXIT_USAGE);
      }
      await admin.deleteUser(username);
      console.log(`user ${username} deleted`);
    }),
  );
  examples(remove, ['chatd user delete mallory', 'chatd user delete mallory --yes']);
}
