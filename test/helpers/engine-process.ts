import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { createServer } from 'node:net';

/** A port that was free a moment ago (an engine binds it itself; a lost race is retried by the caller). */
export function freeLocalPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts an engine's server process and resolves once its log says `ready`
 * (an event, not a sleep); rejects with its log if it exits first. The
 * process is killed when the test process exits, whatever happened.
 */
export function spawnUntilReady(command: string, args: readonly string[], options: SpawnOptions, ready: RegExp): Promise<{ child: ChildProcess; log: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    let settled = false;
    const onData = (chunk: Buffer): void => {
      log += chunk.toString();
      if (log.length > 64 * 1024) log = log.slice(-32 * 1024);
      if (!settled && ready.test(log)) {
        settled = true;
        resolve({ child, log: () => log });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    const killAtExit = (): void => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    process.once('exit', killAtExit);
    child.once('error', (error) => {
      if (!settled) {
        settled = true;
        reject(error);
      }
    });
    child.once('exit', (code, signal) => {
      process.removeListener('exit', killAtExit);
      if (!settled) {
        settled = true;
        reject(new Error(`${command} exited (${code ?? signal}) before it was ready:\n${log}`));
      }
    });
  });
}

/** Resolves when the process has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => child.once('exit', () => done()));
}
