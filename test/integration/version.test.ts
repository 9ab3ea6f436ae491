import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { describeVersion } from '../../src/cli/version.js';
import { runCli } from '../helpers/processes.js';
import { tempDir } from '../helpers/tmp.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

const git = (cwd: string, ...args: string[]): string => execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();

describe('chatd --version', () => {
  it('prints the package version and, run from this git checkout, its commit', async () => {
    const commit = git(ROOT, 'rev-parse', '--short', 'HEAD');
    for (const flag of ['--version', '-V']) {
      const result = await runCli([flag]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, `${VERSION} (commit ${commit})\n`);
    }
  });

  it('prints the version alone for a package without a .git beside it, as installed from the tarball', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'package.json'), '{}');
    assert.equal(describeVersion('1.2.3', dir), '1.2.3');
  });

  it('names the commit of the repository beside the package, not of the working directory', () => {
    const dir = tempDir();
    const quiet = ['-c', 'user.name=t', '-c', 'user.email=t@example.invalid', '-c', 'commit.gpgsign=false'];
    git(dir, 'init', '-q');
    writeFileSync(join(dir, 'package.json'), '{}');
    git(dir, 'add', 'package.json');
    git(dir, ...quiet, 'commit', '-q', '-m', 'first');
    assert.equal(describeVersion('1.2.3', dir), `1.2.3 (commit ${git(dir, 'rev-parse', '--short', 'HEAD')})`);
  });
});
