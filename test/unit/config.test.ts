import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { renderExampleConfig } from '../../src/config/example.js';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { tempDir } from '../helpers/tmp.js';

function problemsOf(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    return [...error.problems];
  }
  assert.fail('expected the configuration to be refused');
}

function file(toml: string): string {
  const path = join(tempDir(), 'config.toml');
  writeFileSync(path, toml);
  return path;
}

describe('configuration', () => {
  it('uses the documented defaults when nothing is given', () => {
    const config = loadConfig({});
    assert.equal(config.server.port, 8080);
    assert.equal(config.server.host, '0.0.0.0');
    assert.equal(config.storage.dir, './chatd-data');
    assert.equal(config.storage.synchronous, 'full');
    assert.equal(config.accounts.registration, 'invite');
  });

  it('takes flags over environment over file over defaults', () => {
    const path = file('[server]\nport = 1000\nhost = "10.0.0.1"\n[log]\nlevel = "warn"\n');
    const config = loadConfig({
      file: path,
      env: { CHATD_SERVER_PORT: '2000', CHATD_SERVER_HOST: '127.0.0.1' },
      flags: { 'server.port': '3000' },
    });
    assert.equal(config.server.port, 3000, 'flag wins');
    assert.equal(config.server.host, '127.0.0.1', 'environment beats the file');
    assert.equal(config.log.level, 'warn', 'file beats the default');
    assert.equal(config.storage.synchronous, 'full', 'default where nothing is set');
  });

  it('names an unknown key and lists the known ones', () => {
    const [problem] = problemsOf(() => loadConfig({ file: file('[server]\nprot = 1\n') }));
    assert.match(problem ?? '', /unknown key server\.prot \(did you mean server\.port\?\); keys in \[server\]: host, port/);
    const [far] = problemsOf(() => loadConfig({ file: file('[server]\nbanana = 1\n') }));
    assert.match(far ?? '', /unknown key server\.banana; keys in/, 'no guess when nothing is near');
  });

  it('names an unknown section', () => {
    const [problem] = problemsOf(() => loadConfig({ file: file('[serevr]\nport = 1\n') }));
    assert.match(problem ?? '', /unknown section "serevr" \(did you mean \[server\]\?\); known sections: server/);
  });

  it('names a wrong type with what is allowed and where it came from', () => {
    const [problem] = problemsOf(() => loadConfig({ file: file('[server]\nport = "eighty"\n') }));
    assert.match(problem ?? '', /server\.port \(in .*config\.toml\) must be an integer from 0 to 65535, got "eighty"/);
  });

  it('refuses a value out of range', () => {
    const [problem] = problemsOf(() => loadConfig({ env: { CHATD_SERVER_PORT: '70000' } }));
    assert.match(problem ?? '', /server\.port \(from CHATD_SERVER_PORT\) must be an integer from 0 to 65535, got "70000"/);
  });

  it('caps e2e.device_message_ttl_days at 30: past the clients\' 31-day replay window a queued grant would be refused as stale', () => {
    const [problem] = problemsOf(() => loadConfig({ file: file('[e2e]\ndevice_message_ttl_days = 31\n') }));
    assert.match(problem ?? '', /e2e\.device_message_ttl_days .* must be an integer from 1 to 30, got 31/);
    assert.equal(loadConfig({ file: file('[e2e]\ndevice_message_ttl_days = 30\n') }).e2e.device_message_ttl_days, 30);
  });

  it('refuses a value not in an enumeration', () => {
    const [problem] = problemsOf(() => loadConfig({ file: file('[accounts]\nregistration = "public"\n') }));
    assert.match(problem ?? '', /accounts\.registration .* must be one of "open", "invite", "closed", got "public"/);
  });

  it('refuses a bad flag value, naming the flag', () => {
    const [problem] = problemsOf(() => loadConfig({ flags: { 'server.transport': 'fast' } }));
    assert.match(problem ?? '', /server\.transport \(flag --transport\) must be one of "auto", "uws", "node"/);
  });

  it('refuses an unknown CHATD_ environment variable as a probable typo', () => {
    const [problem] = problemsOf(() => loadConfig({ env: { CHATD_SERVER_PROT: '1' } }));
    assert.match(problem ?? '', /unknown environment variable CHATD_SERVER_PROT/);
  });

  it('reports every problem at once', () => {
    const problems = problemsOf(() => loadConfig({ file: file('[server]\nport = -1\nhost = ""\n[log]\nlevel = 3\n') }));
    assert.equal(problems.length, 3);
  });

  it('refuses a file that is not TOML, saying so', () => {
    const [problem] = problemsOf(() => loadConfig({ file: file('[server\nport = 1\n') }));
    assert.match(problem ?? '', /, line 1, column 8: not valid TOML: illegal character in key\n\s+1:\s+\[server\n\s+\^/);
  });

  it('shows no quoted value in the excerpt of a TOML error, where a secret may stand, and keeps the caret under the column', () => {
    const [problem] = problemsOf(() => loadConfig({ file: file('[metrics]\ntoken = "s3cret-metrics-token-123"\nenabled = yes\n') }));
    assert.doesNotMatch(problem ?? '', /s3cret/);
    assert.match(problem ?? '', /token = "\*{24}"/);
    assert.match(problem ?? '', /line 3, column 11: not valid TOML: invalid value \(metrics\.enabled is true or false\)/);
  });

  it('says text is quoted when a value is left bare, without repeating the value', () => {
    for (const line of ['host = 127.0.0.1', 'host = localhost']) {
      const [problem] = problemsOf(() => loadConfig({ file: file(`[server]\n${line}\n`) }));
      assert.match(problem ?? '', /not valid TOML: .* \(text is quoted in TOML: host = "…"\)/, line);
    }
    const [port] = problemsOf(() => loadConfig({ file: file('[server]\nport = eighty\n') }));
    assert.match(port ?? '', /not valid TOML: .* \(server\.port is a whole number\)/, 'a number is not quoted');
    const [number] = problemsOf(() => loadConfig({ file: file('[server]\nport = 80 80\n') }));
    assert.doesNotMatch(number ?? '', /quoted/, 'a number is not text');
  });

  it('refuses a missing file', () => {
    const [problem] = problemsOf(() => loadConfig({ file: '/nonexistent/chatd.toml' }));
    assert.match(problem ?? '', /cannot read config file \/nonexistent\/chatd\.toml: no such file/);
  });

  it('checks rules between keys: the heartbeat timeout must exceed the interval', () => {
    const [problem] = problemsOf(() => loadConfig({ env: { CHATD_WEBSOCKET_HEARTBEAT_INTERVAL_MS: '5000', CHATD_WEBSOCKET_HEARTBEAT_TIMEOUT_MS: '4000' } }));
    assert.match(problem ?? '', /heartbeat_timeout_ms \(4000\) must be greater than websocket\.heartbeat_interval_ms \(5000\)/);
  });

  it('checks rules between keys: a message body must leave 512 bytes of a frame for the rest of the send frame, and says what to change', () => {
    const [problem] = problemsOf(() => loadConfig({ env: { CHATD_WEBSOCKET_MAX_FRAME_BYTES: '4096', CHATD_MESSAGES_MAX_BODY_BYTES: '3700' } }));
    assert.match(problem ?? '', /messages\.max_body_bytes \(3700\) must be at least 512 less than websocket\.max_frame_bytes \(4096\)/);
    assert.match(problem ?? '', /lower messages\.max_body_bytes to 3584 or raise websocket\.max_frame_bytes to 4212/);
    assert.equal(loadConfig({ env: { CHATD_WEBSOCKET_MAX_FRAME_BYTES: '4096', CHATD_MESSAGES_MAX_BODY_BYTES: '3584' } }).messages.max_body_bytes, 3584);
  });

  it('config.example.toml is exactly what the schema generates (run npm run gen:config after changing the schema)', () => {
    const committed = readFileSync(new URL('../../config.example.toml', import.meta.url), 'utf8');
    assert.equal(committed, renderExampleConfig());
  });

  it('config.example.toml is a valid configuration equal to the defaults', () => {
    const path = fileURLToPath(new URL('../../config.example.toml', import.meta.url));
    assert.deepEqual(loadConfig({ file: path }), loadConfig({}));
  });
});
