import type pg from 'pg';
import type { LatencyWindow } from '../../latency.js';
import { StorageUnavailableError } from '../errors.js';
import type { WriteTotals } from '../write-batcher.js';
import { type Checkout, checkout } from './checkout.js';
import { isConnectionLoss, isRaceWithAnotherWriter } from './connection-loss.js';
import type { Row, Sql } from './sql.js';

/** A unit of work: its statements, one after another, on the batch's transaction. */
export type Unit<T> = (sql: Sql) => Promise<T>;

/**
 * A unit many of which run as one: the inputs of one kind submitted in the
 * same turn go to one `run`, which stores them all with a fixed number of
 * multi-row statements (`unnest($1::bigint[], …)`). One output per input, in order.
 */
export interface BatchedUnit<I, O> {
  readonly name: string;
  run(sql: Sql, inputs: readonly I[]): Promise<O[]>;
}

interface Pending {
  readonly unit: Unit<unknown> | undefined;
  readonly kind: BatchedUnit<unknown, unknown> | undefined;
  readonly input: unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** Times a unit that raced another node's transaction is run again alone before its error is given back. */
const RACE_RETRIES = 3;

/**
 * Group commit on PostgreSQL, as the WriteBatcher does on SQLite: the units
 * submitted while the previous transaction was committing run together in
 * one transaction on one connection, and every promise settles only after
 * COMMIT, so nothing is acknowledged that is not stored.
 *
 * Within the transaction the batched kinds run first (see runTogether), then
 * the plain units in submit order.
 *
 * One batch is in flight at a time (per node): the next one gathers meanwhile,
 * so a busier node commits more per transaction instead of holding more
 * connections. A unit that throws rolls the batch back; then each unit runs
 * again alone (units are pure database work, so a second run changes nothing
 * but the outcome) and only the bad one rejects. When the server is gone,
 * every unit of the batch rejects with StorageUnavailableError: a COMMIT
 * whose answer was lost may have committed, which a resend with the same
 * client_msg_id finds (a duplicate, not a second message).
 */
export class PgWriteBatcher {
  private queue: Pending[] = [];
  private scheduled = false;
  private running = false;
  private idle: Array<() => void> = [];
  private readonly counted = { transactions: 0, writes: 0, seconds: 0 };

  constructor(
    private readonly pool: pg.Pool,
    private readonly latency: LatencyWindow,
    /** Most units per transaction: bounds how long one transaction holds its row locks. */
    private readonly maxBatch = 1000,
  ) {}

  submit<T>(unit: Unit<T>): Promise<T> {
    return this.enqueue<T>(unit as Unit<unknown>, undefined, undefined);
  }

  submitBatched<I, O>(kind: BatchedUnit<I, O>, input: I): Promise<O> {
    return this.enqueue<O>(undefined, kind as BatchedUnit<unknown, unknown>, input);
  }

  /** Units waiting for, or in, a transaction. */
  get pending(): number {
    return this.queue.length + (this.running ? 1 : 0);
  }

  get totals(): WriteTotals {
    return { ...this.counted };
  }

  /** Resolves once everything submitted so far has committed or failed. */
  settle(): Promise<void> {
    if (!this.running && this.queue.length === 0 && !this.scheduled) return Promise.resolve();
    return new Promise((done) => this.idle.push(done));
  }

  private enqueue<T>(unit: Unit<unknown> | undefined, kind: BatchedUnit<unknown, unknown> | undefined, input: unknown): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ unit, kind, input, resolve: resolve as (value: unknown) => void, reject });
      if (!this.scheduled && !this.running) {
        this.scheduled = true;
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    this.scheduled = false;
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
        const started = performance.now();
        await this.runBatch(batch);
        this.counted.transactions++;
        this.counted.writes += batch.length;
        this.counted.seconds += (performance.now() - started) / 1000;
      }
    } finally {
      this.running = false;
      for (const done of this.idle.splice(0)) done();
    }
  }

  private async runBatch(batch: Pending[]): Promise<void> {
    let taken: Checkout;
    try {
      taken = await checkout(this.pool);
    } catch (error) {
      const lost = new StorageUnavailableError(`PostgreSQL is unavailable: ${(error as Error).message}`, { cause: error });
      for (const item of batch) item.reject(lost);
      return;
    }
    const sql = this.sqlOf(taken.client);
    let broken: unknown;
    try {
      const outcomes = await this.inTransaction(sql, () => this.runTogether(sql, batch));
      batch.forEach((item, index) => {
        const outcome = outcomes[index] as Outcome;
        if (outcome.ok) item.resolve(outcome.value);
        else item.reject(outcome.error);
      });
    } catch (error) {
      if (isConnectionLoss(error)) {
        broken = error;
        const lost = new StorageUnavailableError(`PostgreSQL is unavailable: ${(error as Error).message}`, { cause: error });
        for (const item of batch) item.reject(lost);
      } else {
        // One unit failed (or raced another node): each runs again alone, so only the bad one fails.
        broken = await this.runAlone(sql, batch);
      }
    } finally {
      // A connection that failed is destroyed, not returned to the pool.
      taken.release(broken instanceof Error ? broken : undefined);
    }
  }

  /**
   * Every unit of the batch: first each batched kind's inputs together, kinds
   * in the order of their names, then the plain units in submit order. The
   * fixed order is for locks: every node's transactions take the sends'
   * thread and device locks before the acks' and before anything else, so two
   * nodes' batches wait for each other instead of deadlocking (PostgreSQL
   * breaks a deadlock only after deadlock_timeout, a second, and then every
   * unit of the batch runs again alone).
   */
  private async runTogether(sql: Sql, batch: Pending[]): Promise<Outcome[]> {
    const outcomes: Outcome[] = new Array(batch.length);
    const groups = new Map<BatchedUnit<unknown, unknown>, number[]>();
    batch.forEach((item, index) => {
      if (!item.kind) return;
      const group = groups.get(item.kind);
      if (group) group.push(index);
      else groups.set(item.kind, [index]);
    });
    const kinds = [...groups.keys()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const kind of kinds) {
      const group = groups.get(kind) as number[];
      const values = await kind.run(
        sql,
        group.map((at) => (batch[at] as Pending).input),
      );
      group.forEach((at, n) => {
        outcomes[at] = { ok: true, value: values[n] };
      });
    }
    for (let index = 0; index < batch.length; index++) {
      const item = batch[index] as Pending;
      if (item.unit) outcomes[index] = { ok: true, value: await item.unit(sql) };
    }
    return outcomes;
  }

  /** Each unit in a transaction of its own; resolves to the connection's fatal error, if it broke. */
  private async runAlone(sql: Sql, batch: Pending[]): Promise<unknown> {
    for (let index = 0; index < batch.length; index++) {
      const item = batch[index] as Pending;
      for (let attempt = 0; ; attempt++) {
        try {
          const value = await this.inTransaction(sql, async () => (item.unit ? item.unit(sql) : ((await item.kind?.run(sql, [item.input])) ?? [])[0]));
          item.resolve(value);
          break;
        } catch (error) {
          if (isConnectionLoss(error)) {
            const lost = new StorageUnavailableError(`PostgreSQL is unavailable: ${(error as Error).message}`, { cause: error });
            for (const rest of batch.slice(index)) rest.reject(lost);
            return error;
          }
          if (isRaceWithAnotherWriter(error) && attempt < RACE_RETRIES) continue;
          item.reject(error);
          break;
        }
      }
    }
    return undefined;
  }

  private async inTransaction<T>(sql: Sql, work: () => Promise<T>): Promise<T> {
    await sql.query('BEGIN');
    try {
      const value = await work();
      await sql.query('COMMIT');
      return value;
    } catch (error) {
      await sql.query('ROLLBACK').catch(() => {});
      throw error;
    }
  }

  private sqlOf(client: pg.PoolClient): Sql {
    return timedSql((text, values) => client.query(text, values as unknown[]), this.latency);
  }
}

/** An Sql over a query function, recording each round trip's time. */
export function timedSql(query: (text: string, values?: readonly unknown[]) => Promise<pg.QueryResult>, latency: LatencyWindow): Sql {
  return {
    async query<R extends Row = Row>(text: string, values?: readonly unknown[]) {
      const started = performance.now();
      const result = await query(text, values);
      latency.record(performance.now() - started);
      return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
    },
  };
}
