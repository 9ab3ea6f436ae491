import { createHash } from 'node:crypto';
import { ErrorReply, type RedisClientType } from 'redis';
import { BusUnavailableError, NOT_SERVING } from './errors.js';

/** The command connection the live seams use (R1's RedisBus.commands). */
export type RedisCommands = RedisClientType;

/** What a script or command may answer (RESP3, as node-redis v6 decodes it). */
export type Reply = unknown;

/**
 * A Lua script run by its SHA1 (EVALSHA), loaded with EVAL the first time a
 * server does not know it (after a start or a restart). Scripts are the unit
 * of atomicity across nodes: Redis runs one at a time. The client is shared
 * and made elsewhere, so scripts are not registered with it (node-redis's
 * defineScript is a client option).
 */
export class LuaScript {
  private readonly sha: string;

  constructor(
    private readonly name: string,
    private readonly source: string,
  ) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(client: RedisCommands, keys: readonly string[], args: readonly string[]): Promise<Reply> {
    const options = { keys: [...keys], arguments: [...args] };
    try {
      try {
        return await client.evalSha(this.sha, options);
      } catch (error) {
        if (!(error instanceof ErrorReply) || !error.message.startsWith('NOSCRIPT')) throw error;
        return await client.eval(this.source, options);
      }
    } catch (error) {
      throw busError(error, `the ${this.name} script`);
    }
  }
}

/** Runs one command (or MULTI) and turns a lost connection into BusUnavailableError. */
export async function command<T>(what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw busError(error, what);
  }
}

/**
 * A reply error (a bad script, a wrong type) is a bug and stays as it is,
 * unless it says Redis cannot serve now (LOADING after a restart, BUSY…: see
 * NOT_SERVING); anything else (closed, offline, the socket dropped, a
 * timeout) means Redis is out of reach. The same rule as the bus's `run`.
 */
function busError(error: unknown, what: string): unknown {
  if (error instanceof BusUnavailableError) return error;
  if (error instanceof ErrorReply && !NOT_SERVING.test(error.message)) return error;
  const why = error instanceof Error ? error.message : String(error);
  return new BusUnavailableError(`Redis is unavailable (${what}): ${why}`, { cause: error });
}
