import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseHostPort } from '../../src/config/address.js';
import { ConfigError, loadConfig } from '../../src/config/load.js';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig({ env });
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    return [...error.problems];
  }
  assert.fail('expected the configuration to be refused');
}

describe('the TLS and /metrics settings', () => {
  it('reads host:port for metrics.listen, IPv6 hosts in brackets, and says what is expected otherwise', () => {
    const cases: Array<[string, ReturnType<typeof parseHostPort>]> = [
      ['127.0.0.1:9464', { host: '127.0.0.1', port: 9464 }],
      ['[::1]:9464', { host: '::1', port: 9464 }],
      ['localhost:0', { host: 'localhost', port: 0 }],
      ['9464', { error: 'must be host:port, such as "127.0.0.1:9464" or "[::1]:9464"' }],
      [':9464', { error: 'must be host:port, such as "127.0.0.1:9464" or "[::1]:9464"' }],
      ['::1:9464', { error: 'must be host:port, such as "127.0.0.1:9464" or "[::1]:9464"' }],
      ['127.0.0.1:70000', { error: 'port 70000 is above 65535' }],
    ];
    for (const [text, expected] of cases) assert.deepEqual(parseHostPort(text), expected, text);
  });

  it('refuses a certificate without its key, and a key without its certificate', () => {
    assert.deepEqual(problemsOf({ CHATD_TLS_CERT: 'cert.pem' }), ['tls.cert and tls.key go together: tls.cert is set, tls.key is empty']);
    assert.deepEqual(problemsOf({ CHATD_TLS_KEY: 'key.pem' }), ['tls.cert and tls.key go together: tls.key is set, tls.cert is empty']);
  });

  it('refuses a short metrics token, an unreadable listen address, and either while metrics are off', () => {
    assert.match(problemsOf({ CHATD_METRICS_ENABLED: 'true', CHATD_METRICS_TOKEN: 'short' })[0] ?? '', /metrics\.token must be at least 16 characters \(it has 5\)/);
    assert.match(problemsOf({ CHATD_METRICS_ENABLED: 'true', CHATD_METRICS_LISTEN: '9464' })[0] ?? '', /metrics\.listen must be host:port/);
    assert.match(problemsOf({ CHATD_METRICS_LISTEN: '127.0.0.1:9464' })[0] ?? '', /metrics\.listen is set but metrics\.enabled is false/);
    const config = loadConfig({ env: { CHATD_METRICS_ENABLED: 'true', CHATD_METRICS_TOKEN: 'a'.repeat(16), CHATD_METRICS_LISTEN: '127.0.0.1:9464' } });
    assert.equal(config.metrics.listen, '127.0.0.1:9464');
  });
});
