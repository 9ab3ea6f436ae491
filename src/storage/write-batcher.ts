import type { Db } from './database.js';

/** What the batcher has committed since it was made: the database's share of the event loop. */
export interface WriteTotals {
  /** Transactions committed (or rolled back whole). */
  readonly transactions: number;
  /** Writes run in them. */
  readonly writes: number;
  /** Time the event loop spent in them (statements, commit, fsync), in seconds. */
  readonly seconds: number;
}

interface Pending<T> {
  readonly work: () => T;
  readonly resolve: (value: T) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Group commit. Writes submitted in the same turn of the event loop (the frames
 * that arrived while the previous transaction was committing) run in one
 * IMMEDIATE transaction: one fsync for all of them. A write that throws is
 * rolled back alone and rejects alone; the others commit. Every promise settles
 * only after the commit, so a caller that awaits its write acknowledges nothing
 * that is not on disk.
 *
 * Writes rarely throw, so a batch first runs plainly; only when one throws is
 * the batch rolled back and run again with a savepoint around each write (two
 * statements per write that the common case does without). Writes are pure
 * database work, so running one again changes nothing but the outcome.
 */
export class WriteBatcher {
  private queue: Array<Pending<unknown>> = [];
  private scheduled = false;
  private readonly counted = { transactions: 0, writes: 0, seconds: 0 };
  private readonly runInSavepoints;
  private readonly runPlainly;

  constructor(
    private readonly db: Db,
    /** Most writes per transaction: bounds how long one commit holds the event loop. */
    private readonly maxBatch = 1000,
  ) {
    this.runPlainly = db.transaction((batch: Array<Pending<unknown>>) => batch.map((item) => ({ ok: true as const, value: item.work() })));
    this.runInSavepoints = db.transaction((batch: Array<Pending<unknown>>) => {
      const outcomes: Outcome[] = [];
      const savepoint = this.db.transaction((work: () => unknown) => work());
      for (const item of batch) {
        try {
          outcomes.push({ ok: true, value: savepoint(item.work) });
        } catch (error) {
          // Some failures (disk full, I/O error) roll back the whole transaction, not just the
          // savepoint: then nothing of the batch is stored, and nothing more may run outside it.
          if (!this.db.inTransaction) throw error;
          outcomes.push({ ok: false, error });
        }
      }
      return outcomes;
    });
  }

  /** Runs `work` (synchronous) in the next group transaction; resolves with its result after commit. */
  submit<T>(work: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ work, resolve, reject } as Pending<unknown>);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Number of writes waiting for the next transaction. */
  get pending(): number {
    return this.queue.length;
  }

  get totals(): WriteTotals {
    return { ...this.counted };
  }

  private flush(): void {
    const batch = this.queue.splice(0, this.maxBatch);
    // More than one batch's worth waiting: the rest goes in the next turn, after other I/O.
    if (this.queue.length > 0) setImmediate(() => this.flush());
    else this.scheduled = false;
    const started = performance.now();
    let outcomes: Outcome[];
    try {
      outcomes = this.run(batch);
    } catch (error) {
      // The transaction failed as a whole (disk full, I/O error): nothing of the batch is stored.
      for (const item of batch) item.reject(error);
      return;
    } finally {
      this.counted.transactions++;
      this.counted.writes += batch.length;
      this.counted.seconds += (performance.now() - started) / 1000;
    }
    outcomes.forEach((outcome, index) => {
      const item = batch[index] as Pending<unknown>;
      if (outcome.ok) item.resolve(outcome.value);
      else item.reject(outcome.error);
    });
  }

  /** Each write's outcome; throws when the transaction failed as a whole. */
  private run(batch: Array<Pending<unknown>>): Outcome[] {
    try {
      return this.runPlainly.immediate(batch);
    } catch {
      // A write threw and took the batch with it: again, each write in its own savepoint.
      return this.runInSavepoints.immediate(batch);
    }
  }
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };
