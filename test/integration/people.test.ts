import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request, signUp } from '../helpers/http.js';
import { type PgServer, startPostgres } from '../helpers/postgres.js';
import { type ServerProcess, runCli, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { connectAuthenticated } from '../helpers/ws.js';

/**
 * Self-service on the real server (built: npx tsc -p tsconfig.build.json),
 * on SQLite and on PostgreSQL: PATCH /v1/me changes one's display name
 * (others see it), and users_search finds people as accounts.user_search
 * allows: by prefix, by whole username, or not at all.
 */

interface Deployment {
  readonly server: ServerProcess;
  readonly config: string;
  readonly data: string;
  readonly env: Record<string, string>;
}

async function deploy(userSearch: 'prefix' | 'exact' | 'off', storageUrl?: string): Promise<Deployment> {
  const dir = tempDir();
  const data = join(dir, 'data');
  const config = writeConfig(dir, `
[accounts]
registration = "open"
user_search = "${userSearch}"
[rate_limit]
login_per_address = 100000
`);
  const env: Record<string, string> = storageUrl ? { CHATD_STORAGE_URL: storageUrl } : {};
  return { server: await startServer(['--data', data, '--config', config], { env }), config, data, env };
}

function engines(): Array<{ name: string; url: () => Promise<string | undefined> }> {
  let pg: PgServer | undefined;
  after(() => pg?.stop());
  return [
    { name: 'SQLite', url: async () => undefined },
    {
      name: 'PostgreSQL',
      url: async () => {
        pg ??= await startPostgres();
        return pg.freshDatabase();
      },
    },
  ];
}

for (const engine of engines()) {
  describe(`people on ${engine.name}`, { timeout: 180_000 }, () => {
    let prefix: Deployment;
    before(async () => {
      prefix = await deploy('prefix', await engine.url());
    });
    after(() => prefix.server.stop());

    it('changes the display name with PATCH /v1/me, refuses a bad one with a 400 naming the field, and others see the new name', async () => {
      const base = prefix.server.url;
      const kim = await signUp(base, 'kim');
      const lee = await signUp(base, 'lee');
      const changed = await request(`${base}/v1/me`, { method: 'PATCH', token: kim.token, body: { display_name: '  Kim Park ✨ ' } });
      assert.equal(changed.status, 200);
      assert.deepEqual(changed.body, { user: { id: kim.userId, username: 'kim', display_name: 'Kim Park ✨' }, device_id: kim.deviceId });
      assert.equal((await request(`${base}/v1/me`, { token: kim.token })).body.user.display_name, 'Kim Park ✨');

      for (const [body, message] of [
        [{ display_name: '' }, /display_name must be at least 1 characters/],
        [{ display_name: '   ' }, /display_name must be 1-64 characters/],
        [{ display_name: 'x'.repeat(65) }, /display_name must be/],
        [{ display_name: 'two\nlines' }, /display_name must not contain line breaks/],
        [{ display_name: 42 }, /display_name must be a string/],
        [{}, /display_name is required/],
      ] as const) {
        const refused = await request(`${base}/v1/me`, { method: 'PATCH', token: kim.token, body });
        assert.equal(refused.status, 400, JSON.stringify(body));
        assert.equal(refused.body.error.code, 'invalid_field');
        assert.equal(refused.body.error.field, 'display_name');
        assert.match(refused.body.error.message, message);
      }
      assert.equal((await request(`${base}/v1/me`, { method: 'PATCH', body: { display_name: 'Nobody' } })).status, 401, 'no token');
      assert.equal((await request(`${base}/v1/me`, { token: kim.token })).body.user.display_name, 'Kim Park ✨', 'a refusal changes nothing');

      // Lee sees the new name in the direct chat and finds kim by it.
      const { socket } = await connectAuthenticated(prefix.server.wsUrl, lee.token);
      const thread = await socket.call({ type: 'direct_open', id: 'd', username: 'kim' });
      assert.equal(thread.thread.peer.display_name, 'Kim Park ✨');
      const found = await socket.call({ type: 'users_search', id: 's', query: 'par' });
      assert.deepEqual(found, { type: 'users', id: 's', users: [{ id: kim.userId, username: 'kim', display_name: 'Kim Park ✨' }] });
      socket.close();
    });

    it('finds people by a username or display-name prefix, never disabled or deleted ones, and says why a query is refused', async () => {
      const base = prefix.server.url;
      const me = await signUp(base, 'searcher');
      const names = ['robin', 'Roberta', 'rob_x', 'nora', 'rolf', 'ronald'];
      const ids = new Map<string, number>();
      for (const name of names) ids.set(name, (await signUp(base, name)).userId);
      await request(`${base}/v1/me`, { method: 'PATCH', token: (await signUp(base, 'zz-smith')).token, body: { display_name: 'Rosa Smith' } });
      const disabled = await runCli(['user', 'disable', 'rolf', '--config', prefix.config, '--data', prefix.data], { env: prefix.env });
      assert.equal(disabled.code, 0, disabled.stderr);
      const deleted = await runCli(['user', 'delete', 'ronald', '--yes', '--config', prefix.config, '--data', prefix.data], { env: prefix.env });
      assert.equal(deleted.code, 0, deleted.stderr);

      const { socket } = await connectAuthenticated(prefix.server.wsUrl, me.token);
      const search = async (query: unknown, limit?: number) => socket.call({ type: 'users_search', id: 'q', query, ...(limit === undefined ? {} : { limit }) });
      const usernames = async (query: string, limit?: number): Promise<string[]> => (await search(query, limit)).users.map((user: { username: string }) => user.username);
      assert.deepEqual(await usernames('RO'), ['rob_x', 'Roberta', 'robin', 'zz-smith'], 'case folded; disabled and deleted never; a display name counts');
      assert.deepEqual(await usernames('rob', 2), ['rob_x', 'Roberta']);
      assert.deepEqual(await usernames('smi'), ['zz-smith'], 'a word of the display name');
      assert.deepEqual(await usernames('se'), [], 'never the searcher');
      assert.deepEqual(await usernames('r%'), [], 'LIKE wildcards are literal');
      for (const [query, message] of [
        ['r', /query must be at least 2 characters/],
        ['', /query must be a string of 1-64 characters/],
        [' r ', /query must be at least 2 characters/],
        [42, /query must be a string/],
      ] as const) {
        const refused = await search(query);
        assert.equal(refused.type, 'error', JSON.stringify(query));
        assert.equal(refused.error.code, 'invalid_field');
        assert.equal(refused.error.field, 'query');
        assert.match(refused.error.message, message);
      }
      socket.close();
    });

    it('finds only a whole username when accounts.user_search is "exact", and nobody when it is "off"', async () => {
      const exact = await deploy('exact', await engine.url());
      try {
        const me = await signUp(exact.server.url, 'asker');
        const pat = await signUp(exact.server.url, 'patricia');
        const { socket } = await connectAuthenticated(exact.server.wsUrl, me.token);
        assert.deepEqual((await socket.call({ type: 'users_search', id: 'a', query: 'PATRICIA' })).users.map((u: { id: number }) => u.id), [pat.userId]);
        assert.deepEqual((await socket.call({ type: 'users_search', id: 'b', query: 'pat' })).users, []);
        socket.close();
      } finally {
        await exact.server.stop();
      }
      const off = await deploy('off', await engine.url());
      try {
        const me = await signUp(off.server.url, 'asker');
        await signUp(off.server.url, 'patricia');
        const { socket } = await connectAuthenticated(off.server.wsUrl, me.token);
        const refused = await socket.call({ type: 'users_search', id: 'c', query: 'patricia' });
        assert.equal(refused.error.code, 'forbidden');
        assert.match(refused.error.message, /finding people is turned off on this server \(accounts\.user_search = "off"\)/);
        socket.close();
      } finally {
        await off.server.stop();
      }
    });
  });
}
