import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh directory, removed when the test process exits (node:test's after() inside a hook would run too early). */
export function tempDir(prefix = 'chatd-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Cheap argon2 and short timers, so tests run fast; everything else is the default. */
export const TEST_CONFIG = `
[passwords]
memory_kib = 1024
time_cost = 1
parallelism = 1
`;

/** Writes a config file into `dir` and returns its path. */
export function writeConfig(dir: string, toml: string, name = 'config.toml'): string {
  const path = join(dir, name);
  writeFileSync(path, `${TEST_CONFIG}\n${toml}`);
  return path;
}
