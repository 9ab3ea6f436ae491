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

function askHidden(prompt: string): Promise<string> {
  return new Promise((resolve) => {
    const output = process.stderr;
    const rl = createInterface({ input: process.stdin, output, terminal: true });
    // Echo the prompt, then nothing: readline writes typed characters through _writeToOutput.
    const writer = rl as unknown as { _writeToOutput: (text: string) => void };
    output.write(prompt);
    writer._writeToOutput = () => {};
    rl.question('', (answer) => {
      rl.close();
      output.write('\n');
      resolve(answer);
    });
  });
}
