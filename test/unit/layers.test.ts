import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * The layer rule of style.md, read from the imports: cli → app → transport →
 * session → services → storage, each importing only what lies below it.
 * protocol and storage import no other chatd layer; errors/clock/log are shared leaves.
 */
const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** For each layer, the layers it may import (besides itself and the shared leaves). */
const ALLOWED: Record<string, readonly string[]> = {
  main: ['cli'],
  cli: ['app', 'client', 'config', 'push', 'services', 'storage'],
  app: ['config', 'crypto', 'metrics', 'push', 'realtime', 'services', 'session', 'storage', 'transport'],
  transport: ['protocol', 'services'],
  session: ['protocol', 'realtime', 'services', 'transport'],
  realtime: ['services'],
  services: ['crypto', 'storage'],
  // Push providers and the queue worker: beside the services, called through their PushQueueListener.
  push: ['config', 'services', 'storage'],
  // The process's own figures for GET /metrics: the write batcher's counters among them.
  metrics: ['storage'],
  protocol: [],
  storage: [],
  crypto: [],
  config: [],
  // The client SDK runs in apps, not in the server: it shares only the protocol's types.
  client: ['protocol'],
};
/** Leaves any layer may use; they import no chatd module but each other. */
const SHARED = new Set(['errors', 'clock', 'log']);

function layerOf(file: string): string {
  const path = relative(SRC, file);
  const first = path.split('/')[0] ?? '';
  return first.replace(/\.(ts|js)$/, '');
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sourceFiles(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  );
}

describe('layers', () => {
  it('every source file imports only the layers below it', () => {
    const violations: string[] = [];
    for (const file of sourceFiles(SRC)) {
      const from = layerOf(file);
      if (SHARED.has(from)) continue;
      const allowed = ALLOWED[from];
      assert.ok(allowed, `${relative(SRC, file)} is in no known layer; add it to this test`);
      for (const match of readFileSync(file, 'utf8').matchAll(/(?:from |import\()'(\.[^']+)'/g)) {
        const target = layerOf(resolve(dirname(file), match[1] as string));
        if (target === from || SHARED.has(target) || allowed.includes(target)) continue;
        violations.push(`${relative(SRC, file)} (${from}) imports ${match[1]} (${target})`);
      }
    }
    assert.deepEqual(violations, []);
  });
});
