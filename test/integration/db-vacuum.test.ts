import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { logIn, request, signUp } from '../helpers/http.js';
import { runCli, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';

const MiB = 1024 * 1024;

describe('chatd db vacuum', () => {
  // The busy timeout is ten minutes and the test's limit two: a vacuum that waited for the server to let go
  // would fail by the limit, not by a clock measured on a loaded machine.
  it('refuses while a server has the database open, at once (not after the busy timeout), and the server carries on', { timeout: 120_000 }, async () => {
    const dir = tempDir();
    const data = join(dir, 'data');
    const config = writeConfig(dir, '[storage]\nbusy_timeout_ms = 600000\n');
    const server = await startServer(['--data', data, '--config', config]);
    try {
      const refused = await runCli(['db', 'vacuum', '--data', data, '--config', config]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /chatd\.db is in use by another process, most likely a running chatd serve: stop it first/);
      assert.equal((await request(`${server.url}/healthz`)).status, 200);
    } finally {
      await server.stop();
    }
  });

  it('gives the space of deleted rows back to the file system, says how much, and keeps every account', async () => {
    const dir = tempDir();
    const data = join(dir, 'data');
    const config = writeConfig(dir, '[accounts]\nregistration = "open"\n');
    let server = await startServer(['--data', data, '--config', config]);
    await signUp(server.url, 'alice');
    await server.stop();

    // 8 MiB written and deleted: the file keeps the pages, free.
    const file = join(data, 'chatd.db');
    const direct = new Database(file);
    direct.exec('CREATE TABLE scratch (b BLOB)');
    const insert = direct.prepare('INSERT INTO scratch VALUES (randomblob(65536))');
    direct.transaction(() => {
      for (let i = 0; i < 128; i++) insert.run();
    })();
    direct.exec('DROP TABLE scratch');
    direct.pragma('wal_checkpoint(TRUNCATE)');
    direct.close();
    const before = statSync(file).size;
    assert.ok(before > 8 * MiB);

    const vacuumed = await runCli(['db', 'vacuum', '--data', data]);
    assert.equal(vacuumed.code, 0, vacuumed.stderr);
    assert.match(vacuumed.stderr, /^vacuuming .*chatd\.db: [\d.]+ MiB, of which [\d.]+ MiB in free pages …$/m);
    assert.match(vacuumed.stdout, /^vacuumed .*chatd\.db in \d+ ms: [\d.]+ MiB before, [\d.]+ KiB after \([\d.]+ MiB given back\)$/m);
    assert.ok(statSync(file).size < before - 7 * MiB, `the file shrank: ${before} → ${statSync(file).size}`);

    const check = await runCli(['db', 'check', '--data', data]);
    assert.equal(check.code, 0, check.stdout);
    server = await startServer(['--data', data, '--config', config]);
    try {
      await logIn(server.url, 'alice', 'correct horse');
    } finally {
      await server.stop();
    }
  });

  it('refuses a data directory without a database', async () => {
    const result = await runCli(['db', 'vacuum', '--data', join(tempDir(), 'nowhere')]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /no database at .*nowhere/);
  });
});
