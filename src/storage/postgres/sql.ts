/** A row as pg returns it (bigint columns already numbers: see database.ts). */
export type Row = Record<string, unknown>;

/**
 * Where a unit of work runs its statements: the batch's transaction, or the
 * pool for a read. Statements on one Sql run one at a time: a unit awaits
 * each before the next (a transaction is one connection).
 */
export interface Sql {
  query<R extends Row = Row>(text: string, values?: readonly unknown[]): Promise<{ rows: R[]; rowCount: number }>;
}
