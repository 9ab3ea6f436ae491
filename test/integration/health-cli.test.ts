import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runCli, startServer } from '../helpers/processes.js';
import { tempDir } from '../helpers/tmp.js';

describe('chatd health', () => {
  it('finds the server of a data directory by its lock note, and says why when it is down', async () => {
    const data = join(tempDir(), 'data');
    const server = await startServer(['--data', data]);
    // The port was 0 in the command line: only the note knows the one the server got.
    const up = await runCli(['health', '--data', data]);
    assert.equal(up.code, 0, up.stderr);
    assert.equal(up.stdout, `ok: http://127.0.0.1:${server.port}/healthz answered {"status":"ok"}\n`);

    // A stopped process keeps its socket: the connection is made and nothing answers.
    const pid = server.process.pid as number;
    process.kill(pid, 'SIGSTOP');
    try {
      const hung = await runCli(['health', '--data', data, '--timeout', '300']);
      assert.equal(hung.code, 1);
      assert.equal(hung.stderr, `chatd: http://127.0.0.1:${server.port}/healthz did not answer within 300 ms\n`);
    } finally {
      process.kill(pid, 'SIGCONT');
    }

    // Killed, the server leaves its note behind; nothing listens on the port any more.
    await server.stop('SIGKILL');
    const killed = await runCli(['health', '--data', data]);
    assert.equal(killed.code, 1);
    assert.match(killed.stderr, new RegExp(`^chatd: nothing answers at http://127\\.0\\.0\\.1:${server.port}/healthz \\(connection refused\\)`));

    // Stopped cleanly, it removes the note.
    const again = await startServer(['--data', data]);
    assert.equal(await again.stop(), 0);
    const stopped = await runCli(['health', '--data', data]);
    assert.equal(stopped.code, 1);
    assert.match(stopped.stderr, /^chatd: no chatd serves .*data: there is no chatd\.lock\.json in it/);
  });

  it('refuses a timeout that is not a whole number of milliseconds, and a data directory that does not exist', async () => {
    const data = join(tempDir(), 'data');
    const result = await runCli(['health', '--data', data, '--timeout', 'soon']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--timeout must be a whole number of milliseconds/);
    const missing = await runCli(['health', '--data', data]);
    assert.equal(missing.code, 2);
    assert.equal(missing.stderr, `chatd: the data directory ${data} does not exist: give the server's (--data, or storage.dir / CHATD_STORAGE_DIR)\n`);
  });
});
