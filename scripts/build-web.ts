import { copyFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

/**
 * Builds the web client into dist/web: one minified ES module (plus lazily
 * loaded chunks, such as libsodium for encryption), the page and its styles.
 * Prints each file's gzipped size: the first load must stay under 150 KB of
 * JavaScript (docs/web.md).
 */
const root = fileURLToPath(new URL('..', import.meta.url));
const out = join(root, 'dist/web');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const result = await build({
  entryPoints: { app: join(root, 'web/src/main.tsx') },
  bundle: true,
  format: 'esm',
  splitting: true,
  outdir: out,
  chunkNames: 'chunk-[hash]',
  minify: true,
  target: ['es2020'],
  platform: 'browser',
  conditions: ['browser'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  // libsodium-wrappers names Node modules on paths a browser never takes.
  external: ['crypto', 'path', 'fs'],
  metafile: true,
  logLevel: 'warning',
  legalComments: 'none',
});
// The service worker on its own: one classic script with nothing shared with the page's chunks, served at /sw.js
// (src/transport/http/web.ts) so that its scope is the whole app.
const worker = await build({
  entryPoints: { sw: join(root, 'web/src/sw.ts') },
  bundle: true,
  format: 'iife',
  outdir: out,
  minify: true,
  target: ['es2020'],
  platform: 'browser',
  metafile: true,
  logLevel: 'warning',
  legalComments: 'none',
});
Object.assign(result.metafile.outputs, worker.metafile.outputs);
for (const file of ['index.html', 'style.css']) copyFileSync(join(root, 'web', file), join(out, file));
if (process.argv.includes('--sizes')) {
  for (const file of Object.keys(result.metafile.outputs)) {
    const bytes = readFileSync(join(root, file));
    console.log(`${file}: ${(bytes.length / 1024).toFixed(1)} KB, ${(gzipSync(bytes).length / 1024).toFixed(1)} KB gzipped`);
  }
}
