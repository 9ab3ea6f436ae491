import { execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { exited, freeLocalPort, spawnUntilReady } from './engine-process.js';
import { tempDir } from './tmp.js';

/**
 * A real PostgreSQL server for one test file: Debian's binaries, a data
 * directory in a temp dir, a free port, fsync off (the tests crash chatd, not
 * the machine). Each test takes a fresh database from it.
 */
export interface PgServer {
  readonly port: number;
  /** A URL for database `name` (as the superuser, over TCP). */
  url(name: string): string;
  /** Creates an empty database and resolves to its URL. */
  freshDatabase(): Promise<string>;
  /** Fast shutdown; resolves when it has exited. */
  stop(): Promise<void>;
  /**
   * SIGKILL to the postmaster and every backend, as a crash of the server: resolves when none of them runs, so
   * that nothing sent after it can still be answered (a backend outlives its postmaster until its next wait).
   * The next start recovers from the WAL. Reads /proc: Linux only, as the rest of this helper (Debian's packages).
   */
  kill(): Promise<void>;
  /** Starts it again on the same port and data (after stop or kill). */
  start(): Promise<void>;
  /** The postmaster's process id while it runs (the bench reads its and its backends' CPU time). */
  readonly pid: number | undefined;
}

export interface PostgresOptions {
  /**
   * PostgreSQL's own durable defaults (fsync, full-page writes, synchronous commit, its shared_buffers)
   * instead of the tests' fsync off: the bench's figures must compare with SQLite's synchronous=full.
   */
  readonly durable?: boolean;
}

/** Where Debian keeps PostgreSQL's server binaries: /usr/lib/postgresql/<newest version>/bin (CHATD_PG_BIN overrides). */
export function postgresBin(): string {
  if (process.env['CHATD_PG_BIN']) return process.env['CHATD_PG_BIN'];
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((name) => /^\d+$/.test(name)).sort((a, b) => Number(b) - Number(a)) : [];
  if (versions.length === 0) throw new Error('PostgreSQL is not installed (apt-get install postgresql; .ci/run does it)');
  return join(root, versions[0] as string, 'bin');
}

/** PostgreSQL refuses to run as root: then it runs as Debian's `postgres` user. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  return { uid, gid };
}

function chownTree(dir: string, owner: { uid: number; gid: number }): void {
  execFileSync('chown', ['-R', `${owner.uid}:${owner.gid}`, dir]);
}

/** A data directory made by initdb once per machine and copied for each server (a copy takes a tenth of an initdb). */
function template(bin: string, owner: { uid: number; gid: number } | undefined): string {
  const version = execFileSync(join(bin, 'postgres'), ['--version']).toString().trim().replace(/\W+/g, '_');
  const dir = join(tmpdir(), `chatd-pg-template-${version}-${owner?.uid ?? process.getuid?.() ?? 'u'}`);
  if (existsSync(join(dir, 'PG_VERSION'))) return dir;
  const building = `${dir}.${process.pid}`;
  mkdirSync(building, { recursive: true });
  if (owner) chownSync(building, owner.uid, owner.gid);
  execFileSync(join(bin, 'initdb'), ['-D', building, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale', 'C'], {
    stdio: 'ignore',
    ...(owner ?? {}),
  });
  try {
    renameSync(building, dir);
  } catch {
    // Another test file made it first.
    rmSync(building, { recursive: true, force: true });
  }
  return dir;
}

/** A process as /proc shows it: its state letter, its parent, and when it started (which tells a reused pid apart). */
interface ProcessInfo {
  readonly pid: number;
  readonly state: string;
  readonly ppid: number;
  readonly started: string;
}

/** From /proc (the helper runs on Linux); undefined once the process is gone. */
function processInfo(pid: number): ProcessInfo | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid ... starttime ...": comm may hold spaces and parentheses, so read after its last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { pid, state: fields[0] ?? '', ppid: Number(fields[1]), started: fields[19] ?? '' };
}

/** The processes `parent` started (a postmaster's backends and its workers). */
function childrenOf(parent: number): ProcessInfo[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map((name) => processInfo(Number(name)))
    .filter((info): info is ProcessInfo => info?.ppid === parent);
}

/** Resolves once none of `processes` runs (gone, dead and not yet reaped, or its pid now another's); rejects after 30 s. */
async function allGone(processes: readonly ProcessInfo[]): Promise<void> {
  const running = (info: ProcessInfo): boolean => {
    const now = processInfo(info.pid);
    return now !== undefined && now.started === info.started && now.state !== 'Z' && now.state !== 'X';
  };
  const deadline = Date.now() + 30_000;
  // Orphans are not our children: there is no exit event to wait for, so look again each few milliseconds.
  while (processes.some(running)) {
    if (Date.now() > deadline) throw new Error(`PostgreSQL processes still run 30 s after SIGKILL: ${processes.filter(running).map((info) => info.pid).join(', ')}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export async function startPostgres(options: PostgresOptions = {}): Promise<PgServer> {
  const bin = postgresBin();
  const owner = runAs();
  const root = tempDir('chatd-pg-');
  const data = join(root, 'data');
  cpSync(template(bin, owner), data, { recursive: true });
  // PostgreSQL refuses a data directory others may read; a copy is made with the process's umask on some Nodes.
  chmodSync(data, 0o700);
  if (owner) chownTree(root, owner);
  let port = 0;
  let child: ChildProcess | undefined;
  let databases = 0;
  const settings = options.durable ? ['max_connections=200'] : ['fsync=off', 'full_page_writes=off', 'max_connections=200', 'shared_buffers=32MB'];
  const args = (): string[] => ['-D', data, '-p', String(port), '-k', root, '-c', 'listen_addresses=127.0.0.1', ...settings.flatMap((setting) => ['-c', setting])];

  const launch = async (): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      if (port === 0 || attempt > 0) port = await freeLocalPort();
      try {
        const started = await spawnUntilReady(
          join(bin, 'postgres'),
          args(),
          { ...(owner ?? {}) },
          /database system is ready to accept connections/,
        );
        child = started.child;
        return;
      } catch (error) {
        // Someone took the port between our check and its bind: another one.
        if (attempt < 5 && /could not bind|Address already in use/.test(String(error))) continue;
        throw error;
      }
    }
  };
  /** Start again on the same port (clients reconnect to the URL they know). */
  const relaunch = async (): Promise<void> => {
    // A new postmaster refuses shared memory that processes of the old one still hold: kill() waits for them, but a
    // server stopped otherwise may leave backends that exit only at their next wait. Tried again until they have.
    for (let attempt = 0; ; attempt++) {
      try {
        const started = await spawnUntilReady(join(bin, 'postgres'), args(), { ...(owner ?? {}) }, /database system is ready to accept connections/);
        child = started.child;
        return;
      } catch (error) {
        if (attempt >= 100 || !/pre-existing shared memory block/.test(String(error))) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  };
  await launch();

  const url = (name: string): string => `postgres://postgres@127.0.0.1:${port}/${name}`;
  return {
    get port() {
      return port;
    },
    get pid() {
      return child?.pid;
    },
    url,
    async freshDatabase() {
      const name = `chatd_test_${++databases}`;
      const admin = new pg.Client({ connectionString: url('postgres') });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end();
      }
      return url(name);
    },
    async stop() {
      if (!child) return;
      const running = child;
      child = undefined;
      running.kill('SIGINT');
      await exited(running);
    },
    async kill() {
      if (!child) return;
      const running = child;
      child = undefined;
      // Already dead and reaped: its pid may be another process's now, whose children are not ours to kill.
      if (running.exitCode !== null || running.signalCode !== null || running.pid === undefined) return;
      // Stopped first, so that it forks no backend between the look at its children and the kill; its backends
      // are killed while it still holds them (a stopped parent reaps nothing, so their pids cannot be reused).
      running.kill('SIGSTOP');
      const backends = childrenOf(running.pid);
      for (const backend of backends) {
        try {
          process.kill(backend.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
      running.kill('SIGKILL');
      await exited(running);
      await allGone(backends);
    },
    async start() {
      if (child) return;
      await relaunch();
    },
  };
}
