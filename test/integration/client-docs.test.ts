import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AccountApi, ChatClient } from '../../src/client/node.js';
import { cleanEnv, type ServerProcess, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The first ```ts block after the "complete example" heading of docs/client.md. */
function documentedExample(): string {
  const doc = readFileSync(join(ROOT, 'docs/client.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## A complete example'));
  const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(code, 'docs/client.md has the example');
  return code;
}

describe('docs/client.md', () => {
  let server: ServerProcess;
  before(async () => {
    const dir = tempDir();
    server = await startServer(['--data', join(dir, 'data'), '--config', writeConfig(dir, '[accounts]\nregistration = "open"\n')]);
  });
  after(() => server.stop());

  /** An app directory that depends on chatd the way an npm install lays it out, so imports go through the package's exports map. */
  function appWithExample(): string {
    const app = tempDir();
    mkdirSync(join(app, 'node_modules'));
    symlinkSync(ROOT, join(app, 'node_modules', 'chatd'));
    symlinkSync(join(ROOT, 'node_modules', 'tsx'), join(app, 'node_modules', 'tsx'));
    writeFileSync(join(app, 'package.json'), '{ "type": "module" }\n');
    writeFileSync(join(app, 'echo-bot.ts'), documentedExample());
    return app;
  }

  it('has a complete example that type-checks against the published types of chatd/client', { timeout: 60_000 }, () => {
    const app = appWithExample();
    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
    const flags = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022'];
    // Throws with the compiler's messages when the example does not compile.
    execFileSync(process.execPath, [tsc, ...flags, '--types', 'node', '--typeRoots', join(ROOT, 'node_modules/@types'), 'echo-bot.ts'], { cwd: app, encoding: 'utf8' });
  });

  it('has a complete example that runs as written: the echo bot answers', { timeout: 60_000 }, async () => {
    const app = appWithExample();

    const api = new AccountApi(server.url);
    await api.register({ username: 'echo', password: 'correct horse' });
    await api.register({ username: 'alice', password: 'correct horse' });

    const bot = spawn(process.execPath, ['--import', 'tsx', 'echo-bot.ts'], {
      cwd: app,
      env: cleanEnv({ CHAT_SERVER: server.url, BOT_USER: 'echo', BOT_PASSWORD: 'correct horse' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    bot.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = once(bot, 'close');
    try {
      const lines = createInterface({ input: bot.stdout });
      const online = new Promise<string>((resolve, reject) => {
        lines.on('line', (line) => line.startsWith('echo bot online') && resolve(line));
        void exited.then(([code]) => reject(new Error(`the example exited with ${code}:\n${stderr}`)));
      });
      assert.equal(await online, 'echo bot online as echo');

      const login = await api.login({ username: 'alice', password: 'correct horse', device_name: 'test', platform: 'bot' });
      const alice = new ChatClient({ server: server.url, token: login.token });
      await alice.start();
      try {
        const thread = await alice.openDirect('echo');
        const answer = alice.once('message', (message) => message.sender_id !== alice.user?.id);
        await alice.send(thread.id, { text: 'hello bot' });
        assert.deepEqual((await answer).body, { text: 'echo: hello bot' });
      } finally {
        await alice.close();
      }
      bot.kill('SIGINT');
      assert.deepEqual(await exited, [0, null], 'SIGINT closes the bot cleanly');
    } finally {
      bot.kill('SIGKILL');
    }
  });
});
