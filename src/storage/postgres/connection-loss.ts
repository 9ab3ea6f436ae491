/**
 * Whether a pg error means the server (or the way to it) is gone, rather
 * than that a statement was wrong: then the caller gets a retryable
 * StorageUnavailableError and the pool reconnects by itself.
 */
export function isConnectionLoss(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    // SQLSTATE class 08 (connection exception), 57P01–57P03 (shutdown, crash, not yet accepting), 53300 (too many connections).
    if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300') return true;
    if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH'].includes(code)) return true;
  }
  // pg's own wording when the socket closes under a query or a pooled client waits too long.
  // "Query read timeout": the server did not answer within query_timeout (it went silent), and the connection is not reused.
  return /Connection terminated|connection error|not queryable|timeout exceeded when trying to connect|Query read timeout/i.test(error.message);
}

/** SQLSTATEs that a unit run again alone may not meet: another node's transaction raced this one. */
export function isRaceWithAnotherWriter(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return code === '40001' || code === '40P01' || code === '23505';
}
