import { Worker } from 'node:worker_threads';
import type { GenTask, WorkerReport } from './gen-protocol.js';

/** Worker threads do not inherit `--import tsx`: each registers tsx itself, then loads the TypeScript worker. */
const BOOTSTRAP = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})
  .then((tsx) => tsx.register())
  .then(() => import(${JSON.stringify(new URL('./gen-worker.ts', import.meta.url).href)}));`;

/**
 * Load-generator threads: each gets its task, connects, and waits; `start`
 * releases them together, `stop` collects their reports.
 */
export class Generator {
  private constructor(private readonly workers: Worker[]) {}

  /** Starts one thread per task and waits until every one is connected. */
  static async prepare(tasks: readonly GenTask[]): Promise<Generator> {
    const workers = tasks.map((task) => new Worker(BOOTSTRAP, { eval: true, workerData: task }));
    await Promise.all(workers.map((worker) => next(worker, 'ready')));
    return new Generator(workers);
  }

  private reports: Array<Promise<{ type: string; report?: WorkerReport }>> = [];

  start(): void {
    // Listening before starting: a task that ends by itself (storm) may report at once.
    this.reports = this.workers.map((worker) => next(worker, 'result'));
    for (const report of this.reports) report.catch(() => {});
    for (const worker of this.workers) worker.postMessage('start');
  }

  /** Stops the tasks that run until told (pairs, group, idle); storm tasks end by themselves. */
  async stop(tell = true): Promise<WorkerReport[]> {
    const reports = this.reports;
    if (tell) for (const worker of this.workers) worker.postMessage('stop');
    const results = await Promise.all(reports);
    await Promise.all(this.workers.map((worker) => worker.terminate()));
    return results.map((result) => result.report as WorkerReport);
  }
}

function next(worker: Worker, type: string): Promise<{ type: string; report?: WorkerReport }> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: { type: string; message?: string; report?: WorkerReport }): void => {
      if (message.type === 'failed') reject(new Error(`load generator thread failed: ${message.message}`));
      else if (message.type === type) {
        worker.off('message', onMessage);
        resolve(message);
      }
    };
    worker.on('message', onMessage);
    worker.once('error', reject);
  });
}

/** Splits items over `parts` lists, round robin. */
export function split<T>(items: readonly T[], parts: number): T[][] {
  const lists: T[][] = Array.from({ length: parts }, () => []);
  items.forEach((item, index) => lists[index % parts]?.push(item));
  return lists.filter((list) => list.length > 0);
}
