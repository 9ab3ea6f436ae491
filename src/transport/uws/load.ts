import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export type UwsModule = typeof import('uWebSockets.js');

export type UwsLoad =
  | { readonly ok: true; readonly uws: UwsModule; /** The addon file that loaded (the Docker build keeps only this one). */ readonly file: string }
  | { readonly ok: false; readonly reason: string };

/**
 * The packages that carry uWebSockets.js's native addons, tried in order (docs/node-versions.md).
 * The first has binaries for Node 16/18/20 that need glibc 2.27; the second, for Node 20/22/24/25,
 * needs glibc 2.38 (Debian 13, Ubuntu 24.04), so on Node 20 the first one must win.
 */
const PACKAGES: ReadonlyArray<{ readonly name: string; readonly entry: string; readonly dir: string }> = [
  { name: 'uWebSockets.js', entry: 'uWebSockets.js/package.json', dir: 'binaries' },
  // It exports no ./package.json; its main file sits beside the binaries.
  { name: '@btc-vision/uwebsockets.js', entry: '@btc-vision/uwebsockets.js', dir: '.' },
];

/**
 * Loads uWebSockets.js's native addon for this Node, directly by file name.
 * The packages' own entry points fall back silently to a partial JavaScript
 * imitation when no binary matches; chatd never runs on that, so it loads the
 * binary itself and reports why when it cannot.
 */
export function loadNativeUws(): UwsLoad {
  const require = createRequire(import.meta.url);
  const binary = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  const failures: string[] = [];
  let installed = 0;
  for (const pkg of PACKAGES) {
    let file: string;
    try {
      file = join(dirname(require.resolve(pkg.entry)), pkg.dir, binary);
    } catch {
      continue; // not installed (the second is optional)
    }
    installed += 1;
    try {
      const uws = require(file) as UwsModule;
      if (typeof uws.App !== 'function' || typeof uws.SSLApp !== 'function') {
        failures.push(`${pkg.name}'s ${binary} loaded but is not the native uWebSockets.js addon`);
        continue;
      }
      return { ok: true, uws, file };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      failures.push(
        code === 'MODULE_NOT_FOUND'
          ? `${pkg.name} has no native binary for Node ${process.version} on ${process.platform}/${process.arch} (looked for ${binary})`
          : `${pkg.name}'s binary ${binary} failed to load: ${(error as Error).message.split('\n')[0]}`,
      );
    }
  }
  if (installed === 0) return { ok: false, reason: 'the uWebSockets.js package is not installed' };
  return { ok: false, reason: failures.join('; ') };
}
