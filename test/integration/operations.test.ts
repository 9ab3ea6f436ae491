import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { request, signUp } from '../helpers/http.js';
import { CHATD_BIN, type CliResult, cleanEnv, runCli, startServer } from '../helpers/processes.js';
import { serviceAccountJson } from '../helpers/push-pki.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { uwsUnavailable } from '../helpers/transports.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Runs `chatd ARGS`, killed after `ms`: a server that should have refused to start must not hang the test. */
async function runBounded(args: string[], ms = 20_000): Promise<CliResult> {
  const child = spawn(process.execPath, [CHATD_BIN, ...args], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'], timeout: ms, killSignal: 'SIGKILL' });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

/** A port nothing listens on now; the OS picks it. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

async function refusesConnections(port: number): Promise<boolean> {
  const socket = connect(port, '127.0.0.1');
  try {
    await once(socket, 'connect');
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ECONNREFUSED';
  } finally {
    socket.destroy();
  }
}

const mode = (path: string): string => `0${(statSync(path).mode & 0o777).toString(8)}`;

describe('one server per data directory and per port', () => {
  it('a second server on the same data directory exits 1 naming the first (pid and port), and the first keeps serving', { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const data = join(dir, 'data');
    const first = await startServer(['--data', data]);
    try {
      const second = await runBounded(['serve', '--host', '127.0.0.1', '--port', '0', '--data', data]);
      assert.equal(second.code, 1, second.stderr);
      assert.match(second.stderr, new RegExp(`data directory ${data} is in use by another chatd \\(pid ${first.process.pid}, port ${first.port},`));
      assert.equal(second.stdout, '', 'the second server never said it listens');
      assert.equal((await request(`${first.url}/healthz`)).status, 200);
    } finally {
      assert.equal(await first.stop(), 0);
    }
  });

  for (const transport of ['uws', 'node'] as const) {
    it(`a second server on the port of a running chatd (uws) exits 1, and every request still reaches the first (second on ${transport})`, { timeout: 60_000, skip: uwsUnavailable ?? false }, async () => {
      const dir = tempDir();
      const port = await freePort();
      // A fixed port, not 0: the kernel never shares a port it picked itself, so only a named one shows sharing.
      const first = await startServer(['--data', join(dir, 'first'), '--port', String(port), '--transport', 'uws', '--config', writeConfig(dir, '[accounts]\nregistration = "open"\n')]);
      try {
        assert.equal(first.port, port);
        const second = await runBounded(['serve', '--host', '127.0.0.1', '--port', String(port), '--transport', transport, '--data', join(dir, 'second')]);
        assert.equal(second.code, 1, second.stderr);
        assert.match(second.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use.*\\(--port and --host, or server\\.port and server\\.host\\)`));
        // Shared, the kernel would hand some connections to the second server, whose database knows no such token.
        const { token } = await signUp(first.url, 'alice');
        for (let i = 0; i < 12; i++) assert.equal((await request(`${first.url}/v1/me`, { token })).status, 200);
      } finally {
        await first.stop();
      }
    });
  }

  it('a server killed with SIGKILL leaves no lock behind: the next one starts on its data directory', { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const data = join(dir, 'data');
    const killed = await startServer(['--data', data]);
    await killed.stop('SIGKILL');
    const next = await startServer(['--data', data]);
    assert.equal((await request(`${next.url}/healthz`)).status, 200);
    assert.equal(await next.stop(), 0);
  });
});

describe('a mistyped --data', () => {
  it('is refused by every command but serve, with exit 2, and nothing is created', { timeout: 120_000 }, async () => {
    const dir = tempDir();
    const typo = join(dir, 'chatd-dta');
    const commands = [
      ['user', 'list'],
      ['user', 'add', 'alice'],
      ['user', 'disable', 'alice'],
      ['device', 'revoke', '5'],
      ['invite', 'create'],
      ['stats'],
      ['push', 'test', '5'],
      ['db', 'migrate'],
      ['db', 'check'],
      ['db', 'backup', join(dir, 'backup.db')],
    ];
    for (const command of commands) {
      const result = await runCli([...command, '--data', typo], { input: 'a long password\n' });
      assert.equal(result.code, 2, `${command.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, new RegExp(`no database at ${typo}/chatd\\.db: the data directory ${typo} does not exist\\. Check --data`), command.join(' '));
      assert.equal(result.stdout, '');
    }
    assert.deepEqual(readdirSync(dir), [], 'no directory, database or backup was created');

    const empty = join(dir, 'empty');
    mkdirSync(empty);
    const inEmpty = await runCli(['stats', '--data', empty]);
    assert.equal(inEmpty.code, 2);
    assert.match(inEmpty.stderr, /the data directory .*empty holds no chatd database/);
    assert.deepEqual(readdirSync(empty), []);
  });
});

describe('files the world cannot read', () => {
  let umask: number;
  // Inherited by every process these tests start: the most permissive umask there is.
  before(() => {
    umask = process.umask(0o000);
  });
  after(() => {
    process.umask(umask);
  });

  it('with umask 000, the data directory is 0700 and the database, its WAL and shared memory, the lock files, the VAPID keys and a backup are 0600', { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const data = join(dir, 'data');
    const server = await startServer(['--data', data]);
    try {
      assert.equal(mode(data), '0700');
      const files = ['chatd.db', 'chatd.db-wal', 'chatd.db-shm', 'chatd.lock', 'chatd.lock.json', 'vapid.json'];
      assert.deepEqual(readdirSync(data).sort(), files.sort(), 'these are all the files');
      for (const file of files) assert.equal(mode(join(data, file)), '0600', file);
      const backup = join(dir, 'backup.db');
      const made = await runCli(['db', 'backup', backup, '--data', data]);
      assert.equal(made.code, 0, made.stderr);
      assert.equal(mode(backup), '0600', 'the backup');
    } finally {
      await server.stop();
    }
  });

  it('narrows an existing data directory and database that others can read, with a warning for each', { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const data = join(dir, 'data');
    const first = await startServer(['--data', data]);
    await first.stop();
    // As an earlier chatd left them under the usual umask.
    chmodSync(data, 0o755);
    chmodSync(join(data, 'chatd.db'), 0o644);
    const server = await startServer(['--data', data]);
    try {
      assert.equal(mode(data), '0700');
      assert.equal(mode(join(data, 'chatd.db')), '0600');
      const warned = server.logs.filter((line) => line.msg === 'narrowed the mode of a data file others could read');
      assert.deepEqual(
        warned.map((line) => [line.path, line.from, line.to]),
        [
          [data, '0755', '0700'],
          [join(data, 'chatd.db'), '0644', '0600'],
        ],
      );
      assert.ok(warned.every((line) => line.level === 40), 'at level warn');
    } finally {
      await server.stop();
    }
  });

  it('warns at start about a push key file every account can read, not about one only its group can', { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const apnsKey = join(dir, 'AuthKey.p8');
    writeFileSync(apnsKey, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    chmodSync(apnsKey, 0o644);
    const serviceAccount = serviceAccountJson(dir, 'chatd-test');
    chmodSync(serviceAccount, 0o640);
    const config = writeConfig(
      dir,
      `[apns]\nkey_file = "${apnsKey}"\nkey_id = "ABCDE12345"\nteam_id = "ABCDE12345"\nbundle_id = "org.example.chat"\n[fcm]\nservice_account_file = "${serviceAccount}"\n`,
    );
    const server = await startServer(['--data', join(dir, 'data'), '--config', config]);
    try {
      const warning = await server.waitForLog((line) => line.key === 'apns.key_file');
      assert.equal(warning.level, 40);
      assert.equal(warning.path, apnsKey);
      assert.equal(warning.mode, '0644');
      assert.match(String(warning.msg), /readable by every account on the machine/);
      assert.ok(!server.logs.some((line) => line.key === 'fcm.service_account_file'), 'no warning for a key only its group can read');
    } finally {
      await server.stop();
    }
  });
});

describe('configuration errors', () => {
  it('invalid TOML names the file, the line and the column, with the lines around it, for config check and serve', async () => {
    const dir = tempDir();
    const file = join(dir, 'chatd.toml');
    writeFileSync(file, '[server]\nport = 9000\nhost = localhost\n');
    for (const args of [['config', 'check', file], ['serve', '--config', file, '--data', join(dir, 'data')]]) {
      const result = await runCli(args);
      assert.equal(result.code, 2, args.join(' '));
      assert.match(result.stderr, new RegExp(`${file}, line 3, column 8: not valid TOML: invalid value`));
      assert.match(result.stderr, /\n\s+3:\s+host = localhost\n\s+\^/, 'the offending line, with a caret under the column');
    }
    assert.ok(!existsSync(join(dir, 'data')), 'serve created nothing');
  });
});

describe('signals', () => {
  // The package's own directory: npx links it (no copy, no compile), so this costs a few seconds.
  // --ignore-scripts: its prepare script would rebuild dist/ under the other test files.
  it('SIGTERM to the `npx chatd serve` process alone stops the server gracefully and leaves nothing listening', { timeout: 120_000 }, async () => {
    const dir = tempDir();
    const server = await startServer(['--data', './data'], { cwd: dir, command: ['npx', '--yes', '--ignore-scripts', ROOT] });
    assert.equal((await request(`${server.url}/healthz`)).status, 200);
    // npm alone, as `kill PID` or a process manager would: not its process group, as a terminal's Ctrl-C does.
    server.process.kill('SIGTERM');
    // Resolves when every process that holds its output has ended: chatd included.
    const waiting = new AbortController();
    const stopped = await Promise.race([
      server.exited.then(() => true),
      delay(30_000, false, { signal: waiting.signal }).catch(() => true),
    ]);
    waiting.abort();
    if (!stopped) process.kill(-(server.process.pid as number), 'SIGKILL'); // the orphan, left listening
    assert.ok(stopped, 'chatd stopped within 30 s of the SIGTERM to npx');
    assert.equal(server.logs.at(-1)?.msg, 'stopped');
    assert.ok(await refusesConnections(server.port), 'nothing listens on the port any more');
  });
});

describe('the systemd unit', () => {
  const unitFile = join(ROOT, 'examples', 'systemd', 'chatd.service');
  const unit = readFileSync(unitFile, 'utf8');
  const setting = (key: string): string | undefined => new RegExp(`^${key}=(.*)$`, 'm').exec(unit)?.[1];

  it('runs the installed chatd directly, with its data directory the only one it may write', () => {
    const exec = setting('ExecStart') ?? '';
    assert.match(exec, /^\/\S+\/chatd serve --data (\S+)/, 'the binary, not npx');
    const data = /--data (\S+)/.exec(exec)?.[1];
    assert.equal(setting('ReadWritePaths'), data);
    assert.equal(`/var/lib/${setting('StateDirectory')}`, data);
    for (const hardening of ['NoNewPrivileges=yes', 'ProtectSystem=strict', 'ProtectHome=yes', 'PrivateTmp=yes', 'UMask=0077']) {
      assert.ok(unit.includes(`\n${hardening}\n`), hardening);
    }
    assert.ok(!/^MemoryDenyWriteExecute=yes/m.test(unit), "V8's JIT needs writable, executable memory");
  });

  it('passes systemd-analyze verify', { skip: spawnSync('systemd-analyze', ['--version']).status !== 0 && 'systemd-analyze is not installed' }, () => {
    // verify wants ExecStart's program to exist: an installed chatd is not needed for the rest.
    const dir = tempDir();
    const copy = join(dir, 'chatd.service');
    writeFileSync(copy, unit.replaceAll(/^(#?ExecStart=)\S+/gm, `$1${process.execPath}`));
    const verified = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8' });
    assert.equal(verified.status, 0, verified.stderr);
    assert.equal(verified.stderr.split('\n').filter((line) => line.includes(copy)).join('\n'), '', 'no warning about the unit');
  });
});
