import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package's root: <package>/src/cli or <package>/dist/cli, two levels up. */
const PACKAGE_DIR = fileURLToPath(new URL('../../', import.meta.url));

/**
 * What `chatd --version` prints: the package version, and in a git checkout
 * (a .git beside package.json) the commit it was built from, so that a report
 * from a server run from source names the exact code. An installed package has
 * no .git: only the version. Git is asked only here, never at every start.
 */
export function describeVersion(version: string, packageDir: string = PACKAGE_DIR): string {
  if (!existsSync(join(packageDir, '.git'))) return version;
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: packageDir,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 5_000,
    }).trim();
    return /^[0-9a-f]{4,40}$/.test(commit) ? `${version} (commit ${commit})` : version;
  } catch {
    // No git on this machine, or a repository it will not read: the version alone is still true.
    return version;
  }
}
