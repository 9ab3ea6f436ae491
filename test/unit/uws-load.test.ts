import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { describe, it } from 'node:test';
import { loadNativeUws } from '../../src/transport/uws/load.js';

describe('loading uWebSockets.js', () => {
  const binary = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;

  it("loads this Node's native addon by file name, or names the file and why each package could not give it", () => {
    const loaded = loadNativeUws();
    if (loaded.ok) {
      assert.equal(basename(loaded.file), binary);
      assert.equal(typeof loaded.uws.App, 'function');
      assert.equal(typeof loaded.uws.SSLApp, 'function', 'the native addon, not the JavaScript imitation (which has no SSLApp)');
    } else {
      assert.ok(loaded.reason.includes(binary), loaded.reason);
      assert.match(loaded.reason, /uWebSockets\.js/);
    }
  });
});
