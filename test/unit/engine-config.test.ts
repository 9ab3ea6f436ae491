import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { redactUrl } from '../../src/redact-url.js';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig({ env });
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    return [...error.problems];
  }
  assert.fail('expected the configuration to be refused');
}

describe('the engine URLs (storage.url, bus.url)', () => {
  it('default to SQLite and one node in memory', () => {
    const config = loadConfig({});
    assert.equal(config.storage.url, '');
    assert.equal(config.bus.url, '');
    assert.equal(config.bus.prefix, 'chatd:');
    assert.equal(config.storage.pool_size, 10);
    assert.equal(config.bus.heartbeat_ms, 2_000);
  });

  it('are read from CHATD_STORAGE_URL and CHATD_BUS_URL', () => {
    const config = loadConfig({
      env: { CHATD_STORAGE_URL: 'postgres://chatd:pw@db:5432/chatd', CHATD_BUS_URL: 'redis://redis:6379', CHATD_BUS_PREFIX: 'prod:' },
    });
    assert.equal(config.storage.url, 'postgres://chatd:pw@db:5432/chatd');
    assert.equal(config.bus.url, 'redis://redis:6379');
    assert.equal(config.bus.prefix, 'prod:');
  });

  it('take postgresql:// and rediss:// as well', () => {
    const config = loadConfig({ env: { CHATD_STORAGE_URL: 'postgresql://db/chatd', CHATD_BUS_URL: 'rediss://r:6380' } });
    assert.equal(config.storage.url, 'postgresql://db/chatd');
  });

  it('refuse a storage URL of another engine, naming the key and the scheme but not the password', () => {
    const [problem] = problemsOf({ CHATD_STORAGE_URL: 'mysql://chatd:s3cret@db/chatd' });
    assert.match(problem ?? '', /^storage\.url must be empty \(SQLite in storage\.dir\) or a postgres:\/\/ URL/);
    assert.match(problem ?? '', /"mysql:\/\/chatd:\*\*\*@db\/chatd" has the scheme mysql/);
    assert.doesNotMatch(problem ?? '', /s3cret/);
  });

  it('refuse a Redis URL given as the storage URL and a PostgreSQL one given as the bus URL', () => {
    assert.match(problemsOf({ CHATD_STORAGE_URL: 'redis://r:6379' })[0] ?? '', /storage\.url .* has the scheme redis/);
    const [problem] = problemsOf({ CHATD_STORAGE_URL: 'postgres://db/chatd', CHATD_BUS_URL: 'postgres://u:hidden@db/chatd' });
    assert.match(problem ?? '', /^bus\.url must be empty \(one node\) or a redis:\/\/ URL.*has the scheme postgres/);
    assert.doesNotMatch(problem ?? '', /hidden/);
  });

  it('refuse text that is not a URL without printing a password it may hold', () => {
    const [problem] = problemsOf({ CHATD_STORAGE_URL: 'postgres://chatd:s3cret@db:port/chatd' });
    assert.match(problem ?? '', /storage\.url .*: the value is not a URL \(a password holding @, :, \/ or # must be percent-encoded/);
    assert.doesNotMatch(problem ?? '', /s3cret/);
  });

  it('refuse a bus without a shared database: nodes on SQLite files of their own cannot share one', () => {
    const [problem] = problemsOf({ CHATD_BUS_URL: 'redis://r:6379' });
    assert.match(problem ?? '', /bus\.url is set but storage\.url is empty/);
  });

  it('take PostgreSQL without a bus: one node on PostgreSQL', () => {
    assert.equal(loadConfig({ env: { CHATD_STORAGE_URL: 'postgres://db/chatd' } }).bus.url, '');
  });
});

describe('redactUrl', () => {
  const cases: Array<[string, string]> = [
    ['postgres://chatd:s3cret@db:5432/chatd', 'postgres://chatd:***@db:5432/chatd'],
    ['postgres://chatd@db/chatd', 'postgres://chatd@db/chatd'],
    ['rediss://default:pw@r:6380/0', 'rediss://default:***@r:6380/0'],
    ['postgres://u@h/db?sslmode=require&password=x', 'postgres://u@h/db?sslmode=require&password=***'],
    ['postgres://u:pw@h:port/db', '(invalid URL)'],
  ];
  for (const [url, shown] of cases) {
    it(`shows ${url} as ${shown}`, () => assert.equal(redactUrl(url), shown));
  }
});
