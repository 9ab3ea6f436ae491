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

/**
 * How a write must reach the disk before its promise settles. `durable`: as the
 * database is set (`synchronous = FULL`: fsynced). `lazy`: committed (a crash of
 * the process loses nothing), but on a power cut it may be lost until a later
 * durable commit or checkpoint has synced it; for writes whose loss only
 * repeats something (a delivered cursor: the device gets those messages again
 * and dedupes them by seq).
 */
export type Durability = 'durable' | 'lazy';

interface Pending<T> {
  readonly work: () => T;
  readonly durability: Durability;
  readonly resolve: (value: T) => void;
  readonly reject: (error: unknown) => void;
}

export interface WriteBatcherOptions {
  /** Most writes per transaction: bounds how long one commit holds the event loop. */
  readonly maxBatch?: number;
  /** How long lazy writes wait for a durable write to commit with before they commit alone. */
  readonly lazyDelayMs?: number;
}

/**
 * Group commit. Writes submitted in the same turn of the event loop (the frames
 * that arrived while the previous transaction was committing) run in one
 * IMMEDIATE transaction: one fsync for all of them. A write that throws is
 * rolled back alone and rejects alone; the others commit. Every promise settles
 * only after the commit, so a caller that awaits its (durable) write
 * acknowledges nothing that is not on disk.
 *
 * Writes rarely throw, so a batch first runs plainly; only when one throws is
 * the batch rolled back and run again with a savepoint around each write (two
 * statements per write that the common case does without). Writes are pure
 * database work, so running one again changes nothing but the outcome.
 *
 * Lazy writes (delivered cursors) do not start a transaction of their own at
 * once: they wait up to `lazyDelayMs` and ride in the next durable write's
 * transaction. At moderate load a send arrives every few milliseconds, so a
 * device's ack costs no commit and no fsync of its own (each was a second
 * commit per message); when none comes, they commit together without an fsync,
 * and reach the disk with the next durable commit or checkpoint. A kill of the
 * process loses none of them once committed; a power cut may lose those not
 * yet synced (the WAL keeps its order, so only the newest).
 */
export class WriteBatcher {
  private queue: Array<Pending<unknown>> = [];
  /** What will flush the queue: the next turn (a durable write waits), a timer (lazy writes only), or nothing yet. */
  private scheduled: 'turn' | 'timer' | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly counted = { transactions: 0, writes: 0, seconds: 0 };
  private readonly runInSavepoints;
  private readonly runPlainly;
  private readonly maxBatch: number;
  private readonly lazyDelayMs: number;
  /** Lifts the fsync at commit for a transaction of lazy writes only, and puts it back; none when the database does not fsync at commit. */
  private readonly lazySync: { readonly lift: () => void; readonly restore: () => void } | undefined;
  /** Whether the connection runs without the fsync at commit now (between a lazy batch and putting it back). */
  private lifted = false;

  constructor(
    private readonly db: Db,
    options: WriteBatcherOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 1000;
    this.lazyDelayMs = options.lazyDelayMs ?? 5;
    // 2 = FULL, 3 = EXTRA: a commit fsyncs the WAL. NORMAL in WAL mode fsyncs only at checkpoints.
    const level = db.pragma('synchronous', { simple: true }) as number;
    // Run each time, never prepared once: SQLite applies this pragma when it compiles it, not when it runs it.
    if (level >= 2) this.lazySync = { lift: () => db.exec('PRAGMA synchronous = NORMAL'), restore: () => db.exec(`PRAGMA synchronous = ${level}`) };
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

  /**
   * Runs `work` (synchronous) in a group transaction; resolves with its result after commit. A durable write goes
   * in the next turn's transaction; a lazy one in the first transaction within `lazyDelayMs` (see the class).
   */
  submit<T>(work: () => T, durability: Durability = 'durable'): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ work, durability, resolve, reject } as Pending<unknown>);
      if (durability === 'durable') this.flushNextTurn();
      else if (this.scheduled === undefined) {
        this.scheduled = 'timer';
        this.timer = setTimeout(() => this.flush(), this.lazyDelayMs);
      }
    });
  }

  /** Whatever waits goes in the next turn's transaction, lazy writes included (a shutdown, a test settling). */
  flushNextTurn(): void {
    if (this.scheduled === 'turn') return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.scheduled = 'turn';
    setImmediate(() => this.flush());
  }

  /** Number of writes waiting for the next transaction. */
  get pending(): number {
    return this.queue.length;
  }

  get totals(): WriteTotals {
    return { ...this.counted };
  }

  private flush(): void {
    this.timer = undefined;
    const batch = this.queue.splice(0, this.maxBatch);
    // More than one batch's worth waiting: the rest goes in the next turn, after other I/O.
    if (this.queue.length > 0) {
      this.scheduled = 'turn';
      setImmediate(() => this.flush());
    } else this.scheduled = undefined;
    if (batch.length === 0) return;
    const started = performance.now();
    const lazyOnly = batch.every((item) => item.durability === 'lazy');
    let outcomes: Outcome[];
    try {
      // A durable batch first makes sure the fsync is back (a no-op unless putting it back failed after a lazy one).
      this.liftSync(lazyOnly);
      outcomes = this.run(batch);
    } catch (error) {
      // The transaction failed as a whole (disk full, I/O error): nothing of the batch is stored.
      for (const item of batch) item.reject(error);
      return;
    } finally {
      this.counted.transactions++;
      this.counted.writes += batch.length;
      this.counted.seconds += (performance.now() - started) / 1000;
      if (lazyOnly) {
        try {
          this.liftSync(false);
        } catch {
          // The next durable batch tries again before it runs, and fails whole if it cannot.
        }
      }
    }
    outcomes.forEach((outcome, index) => {
      const item = batch[index] as Pending<unknown>;
      if (outcome.ok) item.resolve(outcome.value);
      else item.reject(outcome.error);
    });
  }

  /** Lifts the fsync at commit (lazy writes only) or puts it back; nothing to do when the database does not fsync at commit. */
  private liftSync(lifted: boolean): void {
    if (this.lazySync === undefined || this.lifted === lifted) return;
    if (lifted) this.lazySync.lift();
    else this.lazySync.restore();
    this.lifted = lifted;
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
