import { createInterface } from 'node:readline';
import { CliError } from './common.js';

/**
 * Reads a password: from a hidden prompt on a terminal (asked twice when
 * `confirm`), otherwise the first line of standard input. Never from argv,
 * where other users of the machine could read it in the process list.
 */
export async function readPassword(prompt: string, options: { confirm: boolean }): Promise<string> {
  if (!process.stdin.isTTY) {
    const line = (await readFirstLine()).replace(/\r$/, '');
    if (line === '') throw new CliError('no password on standard input (pipe it in, or run on a terminal to be asked)');
    return line;
  }
  const first = await askHidden(prompt);
  if (options.confirm && (await askHidden('Repeat the password: ')) !== first) throw new CliError('the passwords do not match');
  return first;
}

/** Asks a yes/no question on a terminal; false when there is no terminal. */
export async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) return false;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const answer = await new Promise<string>((resolve) => rl.question(question, resolve));
  rl.close();
  return /^(y|yes)$/i.test(answer.trim());
}

async function readFirstLine(): Promise<string> {
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    rl.close();
    return line;
  }
  return '';
}

/**
 * Reads a line from the terminal without echoing it, in raw mode. Not through
 * readline: it redraws its line with cursor moves written straight to the
 * terminal (to column 1, clear to the end of the screen), which erased a
 * prompt written beside it, so people saw an empty line and did not know it
 * waited for a password.
 */
function askHidden(prompt: string): Promise<string> {
  const input = process.stdin;
  const output = process.stderr;
  return new Promise((resolve, reject) => {
    let answer = '';
    let escape = false;
    const end = (): void => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      output.write('\n');
    };
    const onData = (chunk: string): void => {
      for (const character of chunk) {
        // The rest of an escape sequence (an arrow key, a function key): up to its final letter or ~.
        if (escape) {
          if (/[A-Za-z~]/.test(character)) escape = false;
          continue;
        }
        if (character === '\r' || character === '\n') {
          end();
          resolve(answer);
          return;
        }
        if (character === '\u0003' || (character === '\u0004' && answer === '')) {
          end();
          reject(character === '\u0003' ? new CliError('interrupted', 130) : new CliError('no password given'));
          return;
        }
        if (character === '\u007f' || character === '\b') answer = [...answer].slice(0, -1).join('');
        else if (character === '\u0015') answer = '';
        else if (character === '\u001b') escape = true;
        else if (character >= ' ') answer += character;
      }
    };
    // Raw (no echo) before the prompt shows: an answer typed at once must not be echoed.
    input.setEncoding('utf8');
    input.setRawMode(true);
    output.write(prompt);
    input.on('data', onData);
    input.resume();
  });
}
