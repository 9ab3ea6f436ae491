import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The built command, as users run it. Tests run `npm run build` first (npm test does). */
export const CHATD_BIN = fileURLToPath(new URL('../../bin/chatd', import.meta.url));

/** The environment for child processes: ours without any CHATD_* variable a developer may have set. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('CHATD_')) env[key] = value;
  return { ...env, ...extra };
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `chatd ARGS` to completion with `input` on standard input. */
export async function runCli(args: string[], options: { input?: string; env?: Record<string, string>; cwd?: string } = {}): Promise<CliResult> {
  const child = spawn(process.execPath, [CHATD_BIN, ...args], { env: cleanEnv(options.env), cwd: options.cwd, stdio: 'pipe' });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.end(options.input ?? '');
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

/**
 * Runs `chatd ARGS` on a pseudo-terminal (util-linux's `script`), as a person
 * at a terminal would: each answer is typed once the text before it (a prompt)
 * has appeared after the previous one. Resolves with everything the terminal
 * showed, cursor controls included.
 */
export async function runOnTerminal(
  args: string[],
  answers: ReadonlyArray<{ readonly after: string; readonly type: string }>,
  timeoutMs = 20_000,
): Promise<{ code: number | null; output: string }> {
  const quote = (word: string): string => `'${word.replaceAll("'", "'\\''")}'`;
  const command = [process.execPath, CHATD_BIN, ...args].map(quote).join(' ');
  const child = spawn('script', ['-qec', command, '/dev/null'], { env: cleanEnv(), stdio: 'pipe' });
  let output = '';
  let from = 0;
  let next = 0;
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    for (let answer = answers[next]; answer !== undefined; answer = answers[next]) {
      const at = output.indexOf(answer.after, from);
      if (at === -1) break;
      from = at + answer.after.length;
      child.stdin.write(answer.type);
      next++;
    }
  });
  // A prompt that never comes would leave the command waiting for input: fail, saying which.
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  if (code === null) throw new Error(`chatd ${args.join(' ')} did not end within ${timeoutMs} ms, waiting for ${JSON.stringify(answers[next]?.after ?? 'its end')}:\n${output}`);
  return { code, output };
}

export interface ServerProcess {
  readonly process: ChildProcess;
  readonly port: number;
  readonly url: string;
  readonly wsUrl: string;
  /** The human line printed at start. */
  readonly banner: string;
  /** JSON log lines seen so far. */
  readonly logs: Array<Record<string, unknown>>;
  /** Resolves with the first log line (seen so far or to come) that `match` accepts; rejects after `timeoutMs`. */
  waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Sends the signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  readonly exited: Promise<number | null>;
}

/**
 * Starts `chatd serve` on a free port (port 0) and waits for its banner line.
 * Stopped by SIGKILL when the test file ends, if still running. `stop` signals its whole process group.
 */
export async function startServer(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; /** How to run chatd; the built bin/chatd by default. */ command?: string[] } = {},
): Promise<ServerProcess> {
  const [program, ...programArgs] = options.command ?? [process.execPath, CHATD_BIN];
  const child = spawn(program as string, [...programArgs, 'serve', '--port', '0', '--host', '127.0.0.1', ...args], {
    env: cleanEnv(options.env),
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, signalled as a whole, the way a terminal's Ctrl-C reaches `npx chatd serve`:
    // npx does not wait for the chatd it started.
    detached: true,
  });
  const signal = (name: NodeJS.Signals): void => {
    try {
      process.kill(-(child.pid as number), name);
    } catch {
      // The group is gone already.
    }
  };
  // 'close', not 'exit': by then every line the process wrote has been read.
  const exited = once(child, 'close').then(([code]) => code as number | null);
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const logs: Array<Record<string, unknown>> = [];
  const logWaiters = new Set<(line: Record<string, unknown>) => void>();
  const lines = createInterface({ input: child.stdout });
  const banner = await new Promise<string>((resolve, reject) => {
    lines.on('line', (line) => {
      if (line.startsWith('{')) {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        for (const waiter of [...logWaiters]) waiter(entry);
      }
      else if (line.startsWith('chatd ')) resolve(line);
    });
    void exited.then((code) => reject(new Error(`chatd serve exited with ${code} before listening:\n${stderr}`)));
  });
  const port = Number(/:(\d+) /.exec(banner)?.[1]);
  process.once('exit', () => signal('SIGKILL'));
  return {
    process: child,
    port,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/v1/ws`,
    banner,
    logs,
    waitForLog: (match, timeoutMs = 10_000) => {
      const seen = logs.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          logWaiters.delete(waiter);
          reject(new Error(`no such log line within ${timeoutMs} ms; last lines: ${JSON.stringify(logs.slice(-5))}`));
        }, timeoutMs);
        const waiter = (line: Record<string, unknown>): void => {
          if (!match(line)) return;
          clearTimeout(timer);
          logWaiters.delete(waiter);
          resolve(line);
        };
        logWaiters.add(waiter);
      });
    },
    exited,
    stop: async (name = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) signal(name);
      return exited;
    },
  };
}
