import assert from 'node:assert/strict';
import { chmodSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { loadNativeUws } from '../../src/transport/uws/load.js';
import { type ServerProcess, runCli, startServer } from '../helpers/processes.js';
import { type SelfSigned, freePort, httpsJson, selfSigned, servedFingerprint } from '../helpers/tls.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { TestSocket } from '../helpers/ws.js';

const uws = loadNativeUws();

/** Logs in over HTTPS and opens an authenticated WSS connection; `ca` is what the client trusts. */
async function connect(port: number, ca: string, username: string): Promise<{ socket: TestSocket; userId: number }> {
  const base = `https://127.0.0.1:${port}`;
  const registered = await httpsJson(`${base}/v1/register`, ca, { body: { username, password: 'correct horse' } });
  assert.equal(registered.status, 201, JSON.stringify(registered.body));
  const login = await httpsJson(`${base}/v1/login`, ca, { body: { username, password: 'correct horse', device_name: 't', platform: 'cli' } });
  assert.equal(login.status, 201, JSON.stringify(login.body));
  const socket = new TestSocket(new WebSocket(`wss://127.0.0.1:${port}/v1/ws`, { ca }));
  await socket.opened;
  await socket.expect({ type: 'auth', token: login.body.token }, 'welcome');
  return { socket, userId: login.body.user.id };
}

for (const transport of ['uws', 'node'] as const) {
  const skip = transport === 'uws' && !uws.ok ? uws.reason : false;

  describe(`TLS from the configuration, ${transport} transport`, { skip }, () => {
    let dir: string;
    let first: SelfSigned;
    let second: SelfSigned;
    let server: ServerProcess;
    let port: number;

    before(async () => {
      dir = tempDir();
      first = selfSigned(dir, 'first');
      second = selfSigned(dir, 'second');
      // The configured paths stay the same; a renewal writes new files there, as certbot's live/ links do.
      copyFileSync(first.certFile, join(dir, 'cert.pem'));
      copyFileSync(first.keyFile, join(dir, 'key.pem'));
      const config = writeConfig(
        dir,
        `[accounts]\nregistration = "open"\n[tls]\ncert = "${join(dir, 'cert.pem')}"\nkey = "${join(dir, 'key.pem')}"\n`,
      );
      port = await freePort();
      server = await startServer(['--data', join(dir, 'data'), '--config', config, '--transport', transport, '--port', String(port)]);
    });
    after(() => server?.stop());

    it('serves HTTPS with the configured certificate and says so at start', async () => {
      assert.match(server.banner, new RegExp(`listening on https://127\\.0\\.0\\.1:${port} `));
      assert.equal(await servedFingerprint(port, first.pem), first.fingerprint256);
      const health = await httpsJson(`https://127.0.0.1:${port}/healthz`, first.pem);
      assert.deepEqual([health.status, health.body], [200, { status: 'ok' }]);
      const logged = await server.waitForLog((line) => line.msg === 'serving HTTPS and WSS with this certificate');
      assert.equal(logged.fingerprint256, first.fingerprint256);
    });

    it('`chatd health` asks over HTTPS, whatever the certificate (a probe on the server\'s own machine)', async () => {
      // Without the server's config file: its lock note says it serves HTTPS, as `serve --config` in a container would leave it.
      const result = await runCli(['health', '--data', join(dir, 'data')]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, `ok: https://127.0.0.1:${port}/healthz answered {"status":"ok"}\n`);
    });

    it('serves a new certificate after SIGHUP, keeps the connections made before, and delivers between the two', async () => {
      const alice = await connect(port, first.pem, `alice_${transport}`);

      copyFileSync(second.certFile, join(dir, 'cert.pem'));
      copyFileSync(second.keyFile, join(dir, 'key.pem'));
      server.process.kill('SIGHUP');
      const reloaded = await server.waitForLog((line) => line.msg === 'TLS certificate reloaded: new connections get it');
      assert.equal(reloaded.fingerprint256, second.fingerprint256);
      assert.equal(await servedFingerprint(port, second.pem), second.fingerprint256);
      await assert.rejects(servedFingerprint(port, first.pem), /self[- ]signed|unable to verify|certificate/i, 'the old certificate is no longer served');

      // Bob arrives on the new certificate and writes to Alice, still connected on the old one.
      const bob = await connect(port, second.pem, `bob_${transport}`);
      const thread = (await bob.socket.expect({ type: 'direct_open', user_id: alice.userId }, 'thread')).thread.id;
      await bob.socket.expect({ type: 'send', thread_id: thread, client_msg_id: 'm1', body: { text: 'over the new certificate' } }, 'ack');
      const received = await alice.socket.nextEvent('message');
      assert.equal(received.message.body.text, 'over the new certificate');
      alice.socket.ws.close();
      bob.socket.ws.close();
    });

    it('keeps serving the previous certificate when the new files cannot be used', async () => {
      // A key that is not the certificate's: the reload is refused and said so.
      copyFileSync(first.keyFile, join(dir, 'key.pem'));
      server.process.kill('SIGHUP');
      const failed = await server.waitForLog((line) => line.msg === 'TLS certificate reload failed; still serving the previous certificate');
      assert.match(String((failed.err as { message?: string }).message), /tls\.key/);
      assert.equal(await servedFingerprint(port, second.pem), second.fingerprint256);
      const health = await httpsJson(`https://127.0.0.1:${port}/healthz`, second.pem);
      assert.equal(health.status, 200);
    });
  });
}

describe('a TLS reload on the uws transport listening on port 0', { skip: uws.ok ? false : uws.reason }, () => {
  it('is refused before anything closes, and the server keeps its certificate and its port', async () => {
    const dir = tempDir();
    const cert = selfSigned(dir, 'only');
    const config = writeConfig(dir, `[tls]\ncert = "${cert.certFile}"\nkey = "${cert.keyFile}"\n`);
    const server = await startServer(['--data', join(dir, 'data'), '--config', config, '--transport', 'uws']);
    try {
      server.process.kill('SIGHUP');
      const failed = await server.waitForLog((line) => line.msg === 'TLS certificate reload failed; still serving the previous certificate');
      assert.match(String((failed.err as { message?: string }).message), /only with a fixed server\.port, not 0/);
      assert.equal(await servedFingerprint(server.port, cert.pem), cert.fingerprint256);
    } finally {
      await server.stop();
    }
  });
});

describe('TLS configuration errors', () => {
  it('warns at start about a TLS key file every account can read', async () => {
    const dir = tempDir();
    const cert = selfSigned(dir, 'open');
    chmodSync(cert.keyFile, 0o644);
    const config = writeConfig(dir, `[tls]\ncert = "${cert.certFile}"\nkey = "${cert.keyFile}"\n`);
    const server = await startServer(['--data', join(dir, 'data'), '--config', config, '--transport', 'node']);
    try {
      const warning = await server.waitForLog((line) => line.key === 'tls.key');
      assert.equal(warning.mode, '0644');
      assert.match(String(warning.msg), /readable by every account on the machine/);
    } finally {
      await server.stop();
    }
  });

  it('refuses to start with a certificate but no key, naming both keys', async () => {
    const dir = tempDir();
    const cert = selfSigned(dir, 'only');
    const config = writeConfig(dir, `[tls]\ncert = "${cert.certFile}"\n`);
    await assert.rejects(startServer(['--data', join(dir, 'data'), '--config', config]), /tls\.cert and tls\.key go together/);
  });

  it('refuses to start when the key file is missing, naming it', async () => {
    const dir = tempDir();
    const cert = selfSigned(dir, 'only');
    const config = writeConfig(dir, `[tls]\ncert = "${cert.certFile}"\nkey = "${join(dir, 'missing-key.pem')}"\n`);
    await assert.rejects(startServer(['--data', join(dir, 'data'), '--config', config]), /cannot read the TLS key .*missing-key\.pem \(tls\.key\): ENOENT/);
  });
});
