import type { Command } from 'commander';
import type { CreatedInvite, Invite } from '../services/admin.js';
import { type DatabaseOptions, examples, formatTime, parseDuration, parsePositiveInteger, printJson, printTable, withAdmin, withDatabaseOptions } from './common.js';

/** The code appears only in what `invite create` prints: the database keeps its hash. */
function inviteJson(invite: Invite | CreatedInvite): Record<string, unknown> {
  return {
    id: invite.id,
    ...('code' in invite ? { code: invite.code } : {}),
    prefix: invite.prefix,
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
      .description('make an invite code and print it (the only time it is shown: the server keeps only its hash)')
      .option('--uses <n>', 'how many accounts it may create', '1')
      .option('--expires <duration>', 'lifetime: like 30m, 12h, 7d, or "never"', '7d')
      .option('--note <text>', 'a reminder of whom it is for', '')
      .option('--json', 'machine-readable output'),
  ).action((options: DatabaseOptions & { uses: string; expires: string; note: string; json?: boolean }) => {
    const maxUses = parsePositiveInteger(options.uses, '--uses');
    const expiresInMs = parseDuration(options.expires);
    return withAdmin(options, async ({ admin }) => {
      const created = await admin.createInvite({ maxUses, expiresInMs, note: options.note });
      if (options.json) return printJson(inviteJson(created));
      console.log(created.code);
      process.stderr.write(
        `invite ${created.id} for ${maxUses} account(s), ${created.expiresAt === null ? 'never expires' : `expires ${formatTime(created.expiresAt)}`}; ` +
          'the code is shown only now\n',
      );
    });
  });
  examples(create, ['chatd invite create', 'chatd invite create --uses 10 --expires 30d --note "book club"']);

  const list = withDatabaseOptions(
    invite.command('list').description('list invites by id and the first letters of their codes').option('--json', 'machine-readable output'),
  ).action(
    (options: DatabaseOptions & { json?: boolean }) =>
      withAdmin(options, async ({ admin }) => {
        const invites = await admin.listInvites();
        if (options.json) return printJson(invites.map(inviteJson));
        printTable(
          ['ID', 'CODE', 'USES', 'EXPIRES', 'STATUS', 'NOTE'],
          invites.map((i) => [
            i.id,
            `${i.prefix}-…`,
            `${i.uses}/${i.maxUses}`,
            formatTime(i.expiresAt),
            i.revoked ? 'revoked' : i.usable ? 'usable' : i.uses >= i.maxUses ? 'used up' : 'expired',
            i.note,
          ]),
        );
      }),
  );
  examples(list, ['chatd invite list', 'chatd invite list --json']);

  const revoke = withDatabaseOptions(
    invite.command('revoke').description('make an invite unusable').argument('<id-or-code>', 'the id from `chatd invite list`, the prefix it shows (abcd-…), or the whole code'),
  ).action((idOrCode: string, options: DatabaseOptions) =>
    withAdmin(options, async ({ admin }) => {
      const revoked = await admin.revokeInvite(idOrCode);
      console.log(`invite ${revoked.id} (${revoked.prefix}-…) revoked`);
    }),
  );
  examples(revoke, ['chatd invite revoke 3', 'chatd invite revoke abcd', 'chatd invite revoke abcd-efgh-jkmn-pqrs']);
}
