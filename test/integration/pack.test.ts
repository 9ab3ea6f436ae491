import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { request } from '../helpers/http.js';
import { startServer } from '../helpers/processes.js';
import { tempDir } from '../helpers/tmp.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('the npm package', () => {
  // Installing the tarball compiles better-sqlite3 from source (about a minute here).
  it('runs `npx ./chatd-<version>.tgz serve` in an empty directory and answers /healthz', { timeout: 600_000 }, async () => {
    const dir = tempDir();
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    // --ignore-scripts: dist/ is already built by `npm test`, and rebuilding it here would race the other test files.
    const packed = execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', empty], { cwd: ROOT, encoding: 'utf8' });
    const name = packed.trim().split('\n').at(-1) as string;
    assert.match(name, /^chatd-\d+\.\d+\.\d+\.tgz$/);
    const tarball = join(empty, name);

    const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n');
    const expectedFiles = ['package/bin/chatd', 'package/dist/main.js', 'package/migrations/0001_initial.sql', 'package/config.example.toml'];
    // chatd/client: both export conditions, with their types.
    for (const entry of ['node', 'browser']) expectedFiles.push(`package/dist/client/${entry}.js`, `package/dist/client/${entry}.d.ts`);
    for (const expected of expectedFiles) {
      assert.ok(files.includes(expected), `${expected} is in the package`);
    }
    assert.ok(!files.some((file) => file.startsWith('package/src/') || file.startsWith('package/test/')), 'no sources or tests in the package');

    // The directory holds nothing but the tarball: no package.json, no node_modules.
    const server = await startServer(['--data', './data'], { cwd: empty, command: ['npx', '--yes', `./${name}`] });
    try {
      assert.match(server.banner, /^chatd \d+\.\d+\.\d+ listening on/);
      assert.match(server.banner, new RegExp(`data in ${empty}/data/chatd.db`));
      assert.deepEqual((await request(`${server.url}/healthz`)).body, { status: 'ok' });
      // Installed from the tarball, there is no .git beside the package: the version alone.
      const version = execFileSync('npx', ['--yes', `./${name}`, '--version'], { cwd: empty, encoding: 'utf8' });
      assert.match(version, /^\d+\.\d+\.\d+\n$/);
    } finally {
      // npx re-raises the signal its child got, so its own exit status says nothing; chatd's last log line does.
      await server.stop();
      assert.equal(server.logs.at(-1)?.msg, 'stopped');
    }
  });
});
