import { Command, CommanderError } from 'commander';
import { addBlobsCommands } from './blobs.js';
import { addChatCommand } from './chat-command.js';
import { VERSION } from './common.js';
import { addConfigCommands } from './config.js';
import { addDbCommands } from './db.js';
import { addDeviceCommands } from './device.js';
import { addHealthCommand } from './health.js';
import { addInviteCommands } from './invite.js';
import { addPushCommands } from './push.js';
import { addServeCommand } from './serve.js';
import { addStatsCommand } from './stats.js';
import { addUserCommands } from './user.js';
import { describeVersion } from './version.js';

export function buildProgram(): Command {
  const program = new Command('chatd')
    .description('chatd: a self-hostable chat server. Every command finds its database the way `serve` does (--data, --config, CHATD_*).')
    // Not commander's .version(): that takes the text up front, and finding the commit runs git.
    .option('-V, --version', 'output the version number (and the git commit, in a checkout)')
    // Settings inherited by every subcommand made after this point.
    .exitOverride()
    .showHelpAfterError('(add --help for usage and examples)')
    .showSuggestionAfterError(true);
  program.on('option:version', () => {
    const text = describeVersion(VERSION);
    process.stdout.write(`${text}\n`);
    // As commander's own --version does under exitOverride: main.ts turns exit code 0 into a clean exit.
    throw new CommanderError(0, 'commander.version', text);
  });
  addServeCommand(program);
  addUserCommands(program);
  addDeviceCommands(program);
  addInviteCommands(program);
  addDbCommands(program);
  addPushCommands(program);
  addStatsCommand(program);
  addHealthCommand(program);
  addBlobsCommands(program);
  addConfigCommands(program);
  addChatCommand(program);
  return program;
}
