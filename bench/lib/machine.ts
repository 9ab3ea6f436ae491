import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { cpus } from 'node:os';

/**
 * Where the bench runs: which cores the server and the load generator get, and
 * how to read a process's CPU time and memory (Linux /proc).
 */
export interface Placement {
  /** `taskset -c CORES` for the server, when it can be pinned. */
  readonly serverCores: string | undefined;
  /** The cores this process (the load generator) is pinned to, when it is. */
  readonly generatorCores: string | undefined;
  /** How many cores the generator may use (for its CPU share). */
  readonly generatorCoreCount: number;
  readonly description: string;
}

function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Server on core 0, generator on the others, when taskset exists and there are two cores or more. */
export function placeProcesses(): Placement {
  const cores = cpus().length;
  if (cores < 2 || !hasTaskset()) {
    return { serverCores: undefined, generatorCores: undefined, generatorCoreCount: cores, description: `not pinned (${cores} cores${hasTaskset() ? '' : ', no taskset'}): server and generator share the machine` };
  }
  const generatorCores = cores === 2 ? '1' : `1-${cores - 1}`;
  // Every thread of this process, and the worker threads it starts later, run on the generator's cores.
  execFileSync('taskset', ['-a', '-cp', generatorCores, String(process.pid)], { stdio: 'ignore' });
  return {
    serverCores: '0',
    generatorCores,
    generatorCoreCount: cores - 1,
    description: `server pinned to core 0, load generator to core${cores === 2 ? '' : 's'} ${generatorCores} (of ${cores})`,
  };
}

const TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU time (user + system) a process has used, in ms. */
export function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at ") ".
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
}

/** Resident memory of a process, in bytes. */
export function processRssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1] ?? 0) * 1024;
}

/** This process's CPU time, all threads (the generator's workers included), in ms. */
export function ownCpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

/** The largest number of open files a process here may have. */
export function fileLimit(): number {
  try {
    return Number(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim()) || 1024;
  } catch {
    return 1024;
  }
}

/** A process and all its descendants, now (from /proc: each process's parent). */
export function processTree(root: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // It exited while we looked.
    }
  }
  const tree = [root];
  for (let index = 0; index < tree.length; index++) for (const [pid, parent] of parents) if (parent === tree[index]) tree.push(pid);
  return tree;
}

/**
 * CPU time (user + system) of a server made of processes (PostgreSQL's postmaster and its backends), in ms:
 * every living process of the tree, and the children the root has already reaped.
 */
export function processTreeCpuMs(root: number): number {
  let total = 0;
  for (const pid of processTree(root)) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += Number(fields[11]) + Number(fields[12]) + (pid === root ? Number(fields[13]) + Number(fields[14]) : 0);
    } catch {
      // A backend that exited meanwhile: counted in the root's reaped children's time from now on.
    }
  }
  return (total * 1000) / TICKS_PER_SECOND;
}

/** Pins a running server and its processes (and the threads of each) to `cores`; processes it forks later inherit it. */
export function pinProcessTree(root: number, cores: string): void {
  for (const pid of processTree(root)) {
    try {
      execFileSync('taskset', ['-a', '-cp', cores, String(pid)], { stdio: 'ignore' });
    } catch {
      // It exited meanwhile.
    }
  }
}
