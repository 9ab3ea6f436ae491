import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Context } from './scenario.js';

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url));

/** A helper script of bench/lib (`./name.ts`) run like the server: pinned to the server's core, with its Node.js flags, under tsx. */
export function pinned(context: Context, script: string, args: string[]): string[] {
  const node = [process.execPath, ...context.serverNodeFlags, '--import', 'tsx', here(script), ...args];
  return context.placement.serverCores ? ['taskset', '-c', context.placement.serverCores, ...node] : node;
}

/** A pinned helper server, listening. */
export interface PinnedListener {
  readonly child: ChildProcess;
  readonly url: string;
}

/** Starts a pinned helper server that prints {"port": N} once it listens; the caller kills it. */
export async function startPinnedListener(context: Context, script: string, args: string[], what: string): Promise<PinnedListener> {
  const [program, ...rest] = pinned(context, script, args);
  const child: ChildProcess = spawn(program as string, rest, { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`${what} exited (${String(code)}) before listening`);
  });
  try {
    const [line] = (await Promise.race([once(createInterface({ input: child.stdout as NodeJS.ReadableStream }), 'line'), exited])) as [string];
    return { child, url: `ws://127.0.0.1:${(JSON.parse(line) as { port: number }).port}/` };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}
