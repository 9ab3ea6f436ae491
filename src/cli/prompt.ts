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
  const [first, again] = await askHidden(options.confirm ? [prompt, 'Repeat the password: '] : [prompt]);
  if (options.confirm && again !== first) throw new CliError('the passwords do not match');
  return first as string;
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
 * Reads one line per prompt from the terminal without echoing it, in raw mode,
 * in one session: what is typed (or pasted) past one answer is the next one's.
 * Not through readline: it redraws its line with cursor moves written straight
 * to the terminal (to column 1, clear to the end of the screen), which erased a
 * prompt written beside it, so people saw an empty line and did not know it
 * waited for a password.
 */
function askHidden(prompts: readonly string[]): Promise<string[]> {
  const input = process.stdin;
  const output = process.stderr;
  return new Promise((resolve, reject) => {
    const answers: string[] = [];
    let answer = '';
    /** Inside an escape sequence (an arrow or function key): 'start' after ESC, 'csi' after ESC [. */
    let escape: 'start' | 'csi' | undefined;
    let lastWasReturn = false;
    const end = (): void => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
    };
    const ask = (): void => void output.write(prompts[answers.length] as string);
    const onData = (chunk: string): void => {
      for (const character of chunk) {
        // Enter, Ctrl-C and Ctrl-D act even inside a sequence: a stray Esc must not make the prompt deaf.
        if (character === '\r' || character === '\n') {
          escape = undefined;
          // The \n of a \r\n pair, or an empty line between prompts from a paste: not an answer of its own.
          if (character === '\n' && answer === '' && lastWasReturn) continue;
          lastWasReturn = character === '\r';
          output.write('\n');
          answers.push(answer);
          answer = '';
          if (answers.length === prompts.length) {
            end();
            resolve(answers);
            return;
          }
          ask();
          continue;
        }
        lastWasReturn = false;
        if (character === '\u0003' || (character === '\u0004' && answer === '')) {
          end();
          output.write('\n');
          reject(character === '\u0003' ? new CliError('interrupted', 130) : new CliError('no password given'));
          return;
        }
        if (escape === 'start') {
          // ESC [ … final, and ESC O x (F1-F4) run on; Alt+key is ESC and one character.
          escape = character === '[' || character === 'O' ? 'csi' : undefined;
          continue;
        }
        if (escape === 'csi') {
          // Parameters and intermediates (0x20-0x3F) until the final byte (0x40-0x7E).
          if (character >= '@' && character <= '~') escape = undefined;
          continue;
        }
        if (character === '\u007f' || character === '\b') answer = [...answer].slice(0, -1).join('');
        else if (character === '\u0015') answer = '';
        else if (character === '\u001b') escape = 'start';
        else if (character >= ' ') answer += character;
      }
    };
    // Raw (no echo) before the prompt shows: an answer typed at once must not be echoed.
    input.setEncoding('utf8');
    input.setRawMode(true);
    ask();
    input.on('data', onData);
    input.resume();
  });
}
