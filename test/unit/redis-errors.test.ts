import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorReply } from 'redis';
import { BusUnavailableError } from '../../src/realtime/redis/errors.js';
import { command } from '../../src/realtime/redis/script.js';
import { unavailableError } from '../../src/errors.js';

/** How the live seams' Redis calls fail: what the client is told depends on it (retryable `unavailable`, or a logged bug). */
describe('Redis errors of the live seams', () => {
  it('a Redis that cannot serve now (loading its data after a restart, busy) is unavailable, retryable', async () => {
    for (const reply of ['LOADING Redis is loading the dataset in memory', 'BUSY Redis is busy running a script', 'READONLY You can\'t write against a read only replica.']) {
      await assert.rejects(
        command('presence add', () => Promise.reject(new ErrorReply(reply))),
        (error: unknown) => error instanceof BusUnavailableError && unavailableError(error)?.code === 'unavailable',
      );
    }
  });

  it('a lost connection is unavailable', async () => {
    await assert.rejects(
      command('liveness', () => Promise.reject(new Error('The client is closed'))),
      (error: unknown) => error instanceof BusUnavailableError,
    );
  });

  it('a reply error of the command itself stays what it is: a bug, not an outage', async () => {
    await assert.rejects(
      command('presence add', () => Promise.reject(new ErrorReply('WRONGTYPE Operation against a key holding the wrong kind of value'))),
      (error: unknown) => error instanceof ErrorReply && unavailableError(error) === undefined,
    );
  });
});
