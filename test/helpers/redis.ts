import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { exited, freeLocalPort, spawnUntilReady } from './engine-process.js';
import { tempDir } from './tmp.js';

/** A real redis-server for one test file: Debian's binary, a free port, a temp dir, no persistence. */
export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** SIGTERM; resolves when it has exited. Everything it held is gone (no persistence). */
  stop(): Promise<void>;
  /** SIGKILL, as a crash. */
  kill(): Promise<void>;
  /** Starts it again on the same port (empty). */
  start(): Promise<void>;
  /** stop() then start(). */
  restart(): Promise<void>;
  /** The server's process id while it runs (the bench reads its CPU time). */
  readonly pid: number | undefined;
}

export function redisBin(): string {
  const bin = process.env['CHATD_REDIS_BIN'] ?? '/usr/bin/redis-server';
  if (!existsSync(bin)) throw new Error('redis-server is not installed (apt-get install redis-server; .ci/run does it)');
  return bin;
}

export async function startRedis(): Promise<RedisServer> {
  const bin = redisBin();
  const dir = tempDir('chatd-redis-');
  let port = 0;
  let child: ChildProcess | undefined;
  const launch = async (keepPort: boolean): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      if (!keepPort || port === 0) port = await freeLocalPort();
      try {
        const started = await spawnUntilReady(
          bin,
          ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--protected-mode', 'no'],
          {},
          /Ready to accept connections/,
        );
        child = started.child;
        return;
      } catch (error) {
        if (!keepPort && attempt < 5 && /Address already in use/.test(String(error))) continue;
        throw error;
      }
    }
  };
  await launch(false);
  const halt = async (signal: NodeJS.Signals): Promise<void> => {
    if (!child) return;
    const running = child;
    child = undefined;
    running.kill(signal);
    await exited(running);
  };
  return {
    get port() {
      return port;
    },
    get url() {
      return `redis://127.0.0.1:${port}`;
    },
    get pid() {
      return child?.pid;
    },
    stop: () => halt('SIGTERM'),
    kill: () => halt('SIGKILL'),
    start: async () => {
      if (!child) await launch(true);
    },
    restart: async () => {
      await halt('SIGTERM');
      await launch(true);
    },
  };
}
