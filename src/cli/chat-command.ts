import type { Command } from 'commander';
import { examples } from './common.js';

export interface ChatOptions {
  server: string;
  user?: string;
  state?: string;
  encryption?: boolean;
}

/**
 * `chatd chat`. The client it runs (the SDK and its WebSocket package) loads
 * only when the command runs: every other command, `serve` first, starts
 * without it.
 */
export function addChatCommand(program: Command): void {
  const chat = program
    .command('chat')
    .description('a terminal chat client: logs in once (the login is kept), then reads commands and messages from standard input')
    .option('--server <url>', "the server's HTTP address", 'http://localhost:8080')
    .option('--user <name>', 'your username (needed until a login is saved)')
    .option('--state <file>', 'the client state; the login goes to FILE.token (default $XDG_STATE_HOME/chatd/chat-HOST_PORT-USER.json)')
    .option('--encryption', 'end-to-end encryption: every message sent is encrypted; /verify, /devices, /approve, /share-history (stays on for a state that has encryption keys)')
    .action(async (options: ChatOptions, command: Command) => {
      const { runChat } = await import('./chat.js');
      await runChat(options, command.getOptionValueSource('server') === 'cli');
    });
  examples(chat, ['chatd chat --server https://chat.example.org --user alice', 'chatd chat --user alice --encryption', "printf '%s\\n' \"$PASSWORD\" '/dm bob' 'hello bob' | chatd chat --user alice"]);
}
