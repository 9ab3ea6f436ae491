import { Command } from 'commander';
import { addChatCommand } from './chat-command.js';
import { VERSION } from './common.js';
import { addConfigCommands } from './config.js';
import { addDbCommands } from './db.js';
import { addDeviceCommands } from './device.js';
import { addInviteCommands } from './invite.js';
import { addPushCommands } from './push.js';
import { addServeCommand } from './serve.js';
import { addStatsCommand } from './stats.js';
import { addUserCommands } from './user.js';

export function buildProgram(): Command {
  const program = new Command('chatd')
    .description('chatd: a self-hostable chat server. Every command finds its database the way `serve` does (--data, --config, CHATD_*).')
    .version(VERSION, '-V, --version')
    // Settings inherited by every subcommand made after this point.
    .exitOverride()
    .showHelpAfterError('(add --help for usage and examples)')
    .showSuggestionAfterError(true);
  addServeCommand(program);
  addUserCommands(program);
  addDeviceCommands(program);
  addInviteCommands(program);
  addDbCommands(program);
  addPushCommands(program);
  addStatsCommand(program);
  addConfigCommands(program);
  addChatCommand(program);
  return program;
}
