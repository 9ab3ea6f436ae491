import type pg from 'pg';

/** A pooled connection taken for a while (a write batch, a snapshot), with what became of it. */
export interface Checkout {
  readonly client: pg.PoolClient;
  /** The connection's own error, if it failed while taken (the server restarted, the backend was terminated). */
  readonly lost: Error | undefined;
  /** Back to the pool; a connection that failed (`error`, or its own) is destroyed instead. */
  release(error?: Error): void;
}

/**
 * Takes a connection from the pool with a listener for its 'error' event: pg
 * emits one on a taken connection whose socket fails (PostgreSQL restarted,
 * pg_terminate_backend), and an 'error' nobody listens to ends the process.
 * The query in flight rejects as well; the listener only keeps the node alive
 * and remembers the connection is not to be reused.
 */
export async function checkout(pool: pg.Pool): Promise<Checkout> {
  const client = await pool.connect();
  let lost: Error | undefined;
  const onError = (error: Error): void => {
    lost = error;
  };
  client.on('error', onError);
  return {
    client,
    get lost() {
      return lost;
    },
    release(error?: Error) {
      client.removeListener('error', onError);
      client.release(error ?? lost);
    },
  };
}
