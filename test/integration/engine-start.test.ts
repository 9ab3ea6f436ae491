import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { freeLocalPort } from '../helpers/engine-process.js';
import { type PgServer, startPostgres } from '../helpers/postgres.js';
import { runCli, startServer } from '../helpers/processes.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * `chatd serve` with storage.url or bus.url naming an engine that does not
 * answer: one line naming the URL without its password, exit 1, no stack
 * trace, and no server on SQLite instead. (Todo until the engines are wired
 * into startServer: today a server starts on SQLite, which these tests catch.)
 */

/** Starts `chatd serve`; resolves to its stderr when it exits before listening, fails the test when it listens. */
async function refusedStart(env: Record<string, string>): Promise<string> {
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    server = await startServer(['--data', `${tempDir()}/data`], { env });
  } catch (error) {
    const text = (error as Error).message;
    assert.match(text, /^chatd serve exited with 1 before listening:/);
    return text.replace(/^chatd serve exited with 1 before listening:\n/, '');
  }
  await server.stop();
  assert.fail(`chatd serve started although the engine does not answer: ${server.banner}`);
}

describe('chatd serve with an engine that does not answer', () => {
  let postgres: PgServer;
  before(async () => {
    postgres = await startPostgres();
  });
  after(() => postgres?.stop());

  it('names an unreachable PostgreSQL without its password and exits 1', async () => {
    const port = await freeLocalPort();
    const stderr = await refusedStart({ CHATD_STORAGE_URL: `postgres://chatd:s3cret@127.0.0.1:${port}/chatd` });
    assert.match(stderr, new RegExp(`^chatd: cannot (use|reach) PostgreSQL at postgres://chatd:\\*\\*\\*@127\\.0\\.0\\.1:${port}/chatd: `));
    assert.doesNotMatch(stderr, /s3cret|    at /);
  });

  it('names an unreachable Redis without its password and exits 1', async () => {
    const port = await freeLocalPort();
    const stderr = await refusedStart({ CHATD_STORAGE_URL: await postgres.freshDatabase(), CHATD_BUS_URL: `redis://:s3cret@127.0.0.1:${port}` });
    assert.match(stderr, new RegExp(`^chatd: cannot (use|reach) Redis at redis://(:\\*\\*\\*@)?127\\.0\\.0\\.1:${port}`));
    assert.doesNotMatch(stderr, /s3cret|    at /);
  });

  it('refuses a storage URL of another engine as a configuration error (exit 2), before opening anything', async () => {
    const result = await runCli(['serve', '--port', '0', '--data', `${tempDir()}/data`], { env: { CHATD_STORAGE_URL: 'mysql://chatd:s3cret@db/chatd' } });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /storage\.url must be empty \(SQLite in storage\.dir\) or a postgres:\/\/ URL .*"mysql:\/\/chatd:\*\*\*@db\/chatd" has the scheme mysql/);
    assert.doesNotMatch(result.stderr, /s3cret/);
  });
});
