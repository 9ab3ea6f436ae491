import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export type UwsModule = typeof import('uWebSockets.js');

export type UwsLoad = { readonly ok: true; readonly uws: UwsModule } | { readonly ok: false; readonly reason: string };

/**
 * Loads uWebSockets.js's native addon for this Node, directly by file name.
 * The package's own entry point falls back silently to a partial JavaScript
 * imitation when no binary matches; chatd never runs on that, so it loads the
 * binary itself and reports why when it cannot.
 */
export function loadNativeUws(): UwsLoad {
  const require = createRequire(import.meta.url);
  let packageDir: string;
  try {
    packageDir = dirname(require.resolve('uWebSockets.js/package.json'));
  } catch {
    return { ok: false, reason: 'the uWebSockets.js package is not installed' };
  }
  const binary = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  try {
    const uws = require(join(packageDir, 'binaries', binary)) as UwsModule;
    if (typeof uws.App !== 'function' || typeof uws.SSLApp !== 'function') {
      return { ok: false, reason: `${binary} loaded but is not the native uWebSockets.js addon` };
    }
    return { ok: true, uws };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'MODULE_NOT_FOUND'
        ? `uWebSockets.js has no native binary for Node ${process.version} on ${process.platform}/${process.arch} (looked for ${binary})`
        : `the uWebSockets.js binary ${binary} failed to load: ${(error as Error).message.split('\n')[0]}`;
    return { ok: false, reason: why };
  }
}
