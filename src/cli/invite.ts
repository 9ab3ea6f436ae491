import type { Command } from 'commander';
import type { Invite } from '../services/admin.js';
import { type DatabaseOptions, examples, formatTime, parseDuration, parsePositiveInteger, printJson, printTable, withDatabaseOptions } from './common.js';
import { withAdmin } from './user.js';

function inviteJson(invite: Invite): Record<string, unknown> {
  return {
    code: invite.code,
    created_at: invite.createdAt,
    expires_at: invite.expiresAt,
    max_uses: invite.maxUses,
    uses: invite.uses,
    revoked: invite.revoked,
    usable: invite.usable,
    note: invite.note,
  };
}

export function addInviteCommands(program: Command): void {
  const invite = program.command('invite').description('invite codes for registration (accounts.registration = "invite")');

  const create = withDatabaseOptions(
    invite
      .command('create')
      .description('make an invite code and print it')
      .option('--uses <n>', 'how many accounts it may create', '1')
      .option('--expires <duration>', 'lifetime: like 30m, 12h, 7d, or "never"', '7d')
      .option('--note <text>', 'a reminder of whom it is for', '')
      .option('--json', 'machine-readable output'),
  ).action((options: DatabaseOptions & { uses: string; expires: string; note: string; json?: boolean }) => {
    const maxUses = parsePositiveInteger(options.uses, '--uses');
    const expiresInMs = parseDuration(options.expires);
    return withAdmin(options, ({ admin }) => {
      const created = admin.createInvite({ maxUses, expiresInMs, note: options.note });
      if (options.json) return printJson(inviteJson(created));
      console.log(created.code);
      process.stderr.write(
        `invite for ${maxUses} account(s), ${created.expiresAt === null ? 'never expires' : `expires ${formatTime(created.expiresAt)}`}\n`,
      );
    });
  });
  examples(create, ['chatd invite create', 'chatd invite create --uses 10 --expires 30d --note "book club"']);

  const list = withDatabaseOptions(invite.command('list').description('list invite codes').option('--json', 'machine-readable output')).action(
    (options: DatabaseOptions & { json?: boolean }) =>
      withAdmin(options, ({ admin }) => {
        const invites = admin.listInvites();
        if (options.json) return printJson(invites.map(inviteJson));
        printTable(
          ['CODE', 'USES', 'EXPIRES', 'STATUS', 'NOTE'],
          invites.map((i) => [
            i.code,
            `${i.uses}/${i.maxUses}`,
            formatTime(i.expiresAt),
            i.revoked ? 'revoked' : i.usable ? 'usable' : i.uses >= i.maxUses ? 'used up' : 'expired',
            i.note,
          ]),
        );
      }),
  );
  examples(list, ['chatd invite list', 'chatd invite list --json']);

  const revoke = withDatabaseOptions(invite.command('revoke').description('make an invite code unusable').argument('<code>')).action(
    (code: string, options: DatabaseOptions) =>
      withAdmin(options, ({ admin }) => {
        admin.revokeInvite(code);
        console.log(`invite ${code} revoked`);
      }),
  );
  examples(revoke, ['chatd invite revoke abcd-efgh-jkmn-pqrs']);
}
