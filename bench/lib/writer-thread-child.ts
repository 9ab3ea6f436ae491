/**
 * The writer-thread experiment (issue 18, item 4): does moving the SQLite
 * writer off the event loop lower the send's p99 at 20,000 msg/s without
 * losing throughput? One run, in this process, pinned like the other ceilings
 * children (bench/scenarios/writer-thread.ts starts it):
 *
 * - `main`: chatd's group commit as the server runs it (src/storage/write-batcher.ts,
 *   a batch per event-loop turn, one IMMEDIATE transaction) on the main thread;
 * - `worker`: the same send unit on a worker thread with its own connection
 *   (writer-thread-worker.ts); the main thread posts one batch of plain-data
 *   commands per turn and gets one message of results per transaction back.
 *   `workerCore` pins the worker thread to a core of its own; without it the
 *   worker shares the process's core.
 *
 * The sends are chatd's real statements (send-fixture.ts) over 200 direct
 * threads with live devices, the server's storage defaults. Around each write
 * the main thread does the rest of a message's work, as CPU: the frame's
 * decode before the write, the ack's and the event's encoding and their
 * publishing after it (`otherUs` in all, a third before and two thirds after).
 * Messages arrive at a fixed rate (a 1 ms timer hands in every message due
 * since the last, so a blocked loop sees them pile up as socket reads do), or,
 * at rate 0, in a closed loop keeping `window` writes in flight (the maximum).
 *
 * Prints one JSON line: completions/s, arrival→result latency (from the time
 * the message was due, so a late loop counts), the main thread's event-loop
 * delay (monitorEventLoopDelay, 10 ms resolution, as the server's metric) and
 * busy share, the worker's busy share, the process's CPU, writes per commit.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { WriteBatcher } from '../../src/storage/write-batcher.js';
import { type SendCommand, type SendResult, type Sender, createThreads, openWriter, sendUnit } from './send-fixture.js';
import type { BatchMessage, WorkerAnswer } from './writer-thread-worker.js';

export interface WriterRunOptions {
  readonly mode: 'main' | 'worker';
  /** A core of its own for the worker thread (`taskset -pc`); absent: it shares the process's cores. */
  readonly workerCore?: string;
  /** Messages per second offered; 0: as many as `window` in flight allows. */
  readonly rate: number;
  readonly window: number;
  readonly warmupMs: number;
  readonly seconds: number;
  /** Main-thread CPU per message besides the write (decode, encode, publish), in µs. */
  readonly otherUs: number;
}

export interface WriterRunReport {
  readonly perSecond: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly loopP99: number;
  readonly loopMax: number;
  /** Share of the measured window the main thread's event loop was busy (0–1). */
  readonly mainBusy: number;
  readonly workerBusy: number;
  /** The process's CPU, all threads, as a share of one core. */
  readonly cpu: number;
  readonly writesPerCommit: number;
  /** CPU per completed message, in µs: the main thread's, the worker thread's (0 in main mode), and the whole process's (GC and other helper threads too). */
  readonly mainCpuUs: number;
  readonly workerCpuUs: number;
  readonly processCpuUs: number;
  /** Main mode: share of the window inside write transactions (statements, commit, fsync), as the server's metric. */
  readonly inCommits: number;
  /** Worker mode: the cores the worker thread was allowed, as Linux reports them. */
  readonly workerCores?: string;
  readonly failed: number;
}

interface Writer {
  submit(command: SendCommand): Promise<SendResult>;
  /** Transactions so far. */
  readonly commits: number;
  /** Main mode: seconds the event loop spent in transactions so far. */
  readonly commitSeconds: number;
  readonly cores?: string;
  /** The worker's Linux thread id. */
  readonly threadId?: number;
  busy(): number;
  close(): Promise<void>;
}

const MAX_BATCH = 1000;

/** Worker threads do not inherit `--import tsx`: the worker registers tsx itself, then loads the TypeScript module (as generator.ts does). */
const BOOTSTRAP = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})
  .then((tsx) => tsx.register())
  .then(() => import(${JSON.stringify(new URL('./writer-thread-worker.ts', import.meta.url).href)}));`;

function mainThreadWriter(dir: string): Writer {
  const { db, store, settings } = openWriter(dir);
  const send = sendUnit(store, settings);
  const batcher = new WriteBatcher(db, { maxBatch: MAX_BATCH });
  return {
    submit: (command) => batcher.submit(() => send(command)),
    get commits() {
      return batcher.totals.transactions;
    },
    get commitSeconds() {
      return batcher.totals.seconds;
    },
    busy: () => 0,
    close: async () => {
      db.close();
    },
  };
}

async function workerThreadWriter(dir: string, core: string | undefined): Promise<Writer> {
  const worker = new Worker(BOOTSTRAP, { eval: true, workerData: { dir } });
  const waiting = new Map<number, Array<{ resolve: (result: SendResult) => void; reject: (error: Error) => void }>>();
  let queue: Array<{ command: SendCommand; resolve: (result: SendResult) => void; reject: (error: Error) => void }> = [];
  let scheduled = false;
  let nextId = 0;
  let commits = 0;
  const ready = new Promise<number>((resolve, reject) => {
    worker.once('error', reject);
    worker.on('message', (answer: WorkerAnswer) => {
      if (answer.kind === 'ready') return resolve(answer.threadId);
      commits++;
      if (answer.kind === 'failed') {
        for (const id of answer.ids) for (const item of waiting.get(id) ?? []) item.reject(new Error(answer.message));
        for (const id of answer.ids) waiting.delete(id);
        return;
      }
      for (const batch of answer.batches) {
        const items = waiting.get(batch.id) ?? [];
        waiting.delete(batch.id);
        batch.results.forEach((result, index) => items[index]?.resolve(result));
      }
    });
  });
  const threadId = await ready;
  if (core !== undefined) execFileSync('taskset', ['-pc', core, String(threadId)], { stdio: 'ignore' });
  const cores = /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/self/task/${threadId}/status`, 'utf8'))?.[1];
  const flush = (): void => {
    const batch = queue.splice(0, MAX_BATCH);
    if (queue.length > 0) setImmediate(flush);
    else scheduled = false;
    const id = nextId++;
    waiting.set(id, batch);
    worker.postMessage({ id, commands: batch.map((item) => item.command) } satisfies BatchMessage);
  };
  return {
    submit: (command) =>
      new Promise<SendResult>((resolve, reject) => {
        queue.push({ command, resolve, reject });
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      }),
    get commits() {
      return commits;
    },
    commitSeconds: Number.NaN,
    threadId,
    ...(cores ? { cores } : {}),
    busy: () => worker.performance.eventLoopUtilization().active,
    close: async () => {
      worker.postMessage('close');
      await new Promise((resolve) => worker.once('exit', resolve));
    },
  };
}

/** CPU time (user + system) of one thread of this process, in ms (Linux; clock ticks, 10 ms here). */
function threadCpuMs(threadId: number): number {
  const stat = readFileSync(`/proc/self/task/${threadId}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
}

const TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU for `us` microseconds, from `since` (what the message's real work already took counts). */
function spin(since: number, us: number): void {
  const until = since + us / 1000;
  while (performance.now() < until);
}

const PAD = 'x'.repeat(170);
/** The loop-delay timer's period, as the server's metric (a timer due every 10 ms). */
const LOOP_RESOLUTION_MS = 10;

export async function runWriter(options: WriterRunOptions): Promise<WriterRunReport> {
  const dir = mkdtempSync(join(tmpdir(), 'chatd-writer-thread-'));
  try {
    const senders: Sender[] = createThreads(dir);
    const writer = options.mode === 'main' ? mainThreadWriter(dir) : await workerThreadWriter(dir, options.workerCore);
    const decodeUs = options.otherUs / 3;
    const afterUs = options.otherUs - decodeUs;
    const started = performance.now();
    const measureFrom = started + options.warmupMs;
    const measureTo = measureFrom + options.seconds * 1000;
    const latencies: number[] = [];
    let completed = 0;
    let failed = 0;
    let inFlight = 0;
    let sent = 0;
    let done: () => void = () => {};
    const drained = new Promise<void>((resolve) => {
      done = resolve;
    });
    let stopped = false;

    /** A frame that was due at `due`: decoded, written, answered. */
    const arrive = (due: number): void => {
      const begin = performance.now();
      const n = sent++;
      const sender = senders[n % senders.length] as Sender;
      const frame = `{"t":"send","thread_id":${sender.threadId},"client_msg_id":"c${n.toString().padStart(12, '0')}","body":{"t":0,"p":"${PAD}"}}`;
      const decoded = JSON.parse(frame) as { thread_id: number; client_msg_id: string; body: unknown };
      const command: SendCommand = {
        threadId: decoded.thread_id, senderUserId: sender.userId, senderDeviceId: sender.deviceId,
        clientMsgId: decoded.client_msg_id, bodyJson: JSON.stringify(decoded.body), now: Date.now(),
      };
      spin(begin, decodeUs);
      inFlight++;
      writer.submit(command).then(
        (result) => {
          const now = performance.now();
          if (due >= measureFrom && due < measureTo) latencies.push(now - due);
          if (now >= measureFrom && now < measureTo) completed++;
          const ack = `{"t":"ack","client_msg_id":"${command.clientMsgId}","id":${result.id},"seq":${result.seq}}`;
          const event = `{"t":"message","thread_id":${command.threadId},"seq":${result.seq},"id":${result.id},"created_at":${result.createdAt},"body":${command.bodyJson}}`;
          if (ack.length + event.length === 0) throw new Error('unreachable');
          spin(now, afterUs);
          finish();
        },
        () => {
          failed++;
          finish();
        },
      );
    };
    const finish = (): void => {
      inFlight--;
      if (!stopped && options.rate === 0) {
        if (performance.now() >= measureTo) stopped = true;
        else arrive(performance.now());
      }
      if (stopped && inFlight === 0) done();
    };

    if (options.rate > 0) {
      const interval = 1000 / options.rate;
      let next = started;
      const tick = (): void => {
        const now = performance.now();
        for (; next <= now && next < measureTo; next += interval) arrive(next);
        if (next < measureTo) setTimeout(tick, 1);
        else {
          stopped = true;
          if (inFlight === 0) done();
        }
      };
      tick();
    } else {
      for (let i = 0; i < options.window; i++) arrive(performance.now());
    }

    // Measured from the end of the warm-up.
    const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
    await new Promise((resolve) => setTimeout(resolve, measureFrom - performance.now()));
    loop.enable();
    const cpuMark = process.cpuUsage();
    // The main thread's Linux thread id is the process id.
    const mainCpuMark = threadCpuMs(process.pid);
    const workerCpuMark = writer.threadId === undefined ? 0 : threadCpuMs(writer.threadId);
    const eluMark = performance.eventLoopUtilization();
    const workerMark = writer.busy();
    const commitMark = writer.commits;
    const commitSecondsMark = writer.commitSeconds;
    const completedMark = completed;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, measureTo - performance.now())));
    loop.disable();
    const elapsed = performance.now() - measureFrom;
    const cpu = process.cpuUsage(cpuMark);
    const mainCpu = threadCpuMs(process.pid) - mainCpuMark;
    const workerCpu = writer.threadId === undefined ? 0 : threadCpuMs(writer.threadId) - workerCpuMark;
    const mainBusy = performance.eventLoopUtilization(eluMark).utilization;
    const workerActive = writer.busy() - workerMark;
    const commits = writer.commits - commitMark;
    const inCommits = ((writer.commitSeconds - commitSecondsMark) * 1000) / elapsed;
    const writes = completed - completedMark;
    await drained;
    await writer.close();
    const sorted = Float64Array.from(latencies).sort();
    const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
    return {
      perSecond: completed / (options.seconds),
      p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] ?? Number.NaN,
      // The histogram holds the whole interval between the timer's runs: how late it ran is what exceeds the resolution.
      loopP99: Math.max(0, loop.percentile(99) / 1e6 - LOOP_RESOLUTION_MS), loopMax: Math.max(0, loop.max / 1e6 - LOOP_RESOLUTION_MS),
      mainBusy, workerBusy: workerActive / elapsed,
      cpu: (cpu.user + cpu.system) / 1000 / elapsed,
      writesPerCommit: commits > 0 ? writes / commits : Number.NaN,
      inCommits,
      mainCpuUs: (mainCpu * 1000) / writes, workerCpuUs: (workerCpu * 1000) / writes,
      processCpuUs: ((cpu.user + cpu.system) / writes),
      ...(writer.cores ? { workerCores: writer.cores } : {}),
      failed,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2]) {
  const report = await runWriter(JSON.parse(process.argv[2]) as WriterRunOptions);
  console.log(JSON.stringify(report));
  process.exit(0);
}
