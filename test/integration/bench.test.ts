import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DOCKER_NODE_FLAGS } from '../../bench/lib/server.js';
import { cleanEnv } from '../helpers/processes.js';
import { uwsUnavailable } from '../helpers/transports.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The bench is a program users run: it must keep running. Its figures are not checked, only that it produces them. */
describe('npm run bench', () => {
  // Its servers run on uws and its ceilings on bare uWS (bench/README.md): without the native addon there is nothing to measure.
  it('runs scenarios in --quick mode and writes a results file with their tables', { timeout: 300_000, skip: uwsUnavailable }, async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--scenario', 'cold-start,group-fanout,ceilings', '--quick'], {
      cwd: ROOT,
      env: cleanEnv(),
      maxBuffer: 16 * 1024 * 1024,
    });
    const written = /written: (bench\/results\/\S+)\.md/.exec(stdout)?.[1];
    assert.ok(written, `the bench names its results file:\n${stdout}`);
    const markdown = readFileSync(`${ROOT}/${written}.md`, 'utf8');
    for (const heading of ['## cold-start', '## group-fanout', '## ceilings']) assert.ok(markdown.includes(heading), `${heading} is in the results`);
    assert.ok(markdown.includes(`server: node ${DOCKER_NODE_FLAGS.join(' ')} bin/chatd serve (as the Docker image runs it)`), 'the header says how the servers ran');
    assert.match(markdown, /\| 1 group of 200, 4 sender\(s\) each, window 4 \| [\d,]+ \| [\d,]+ \|/, 'the fanout row has its figures');
    const json = JSON.parse(readFileSync(`${ROOT}/${written}.json`, 'utf8')) as { results: Record<string, Array<{ setting: string; figures: Record<string, number> }>> };
    const fanout = json.results['group-fanout']?.[0]?.figures['deliveries/s'] ?? 0;
    assert.ok(fanout > 0, 'messages were delivered');
    // The server's own counters (GET /metrics) over the measured window: where its event loop's time went.
    const loop = json.results['group-fanout']?.[0]?.figures ?? {};
    assert.ok((loop['writes/commit'] ?? 0) >= 1, `the sends were committed in transactions: ${JSON.stringify(loop)}`);
    assert.ok((loop['in commits %'] ?? 0) > 0 && (loop['in commits %'] ?? 1) < 1, 'a share of the loop went to commits');
    assert.ok((loop['loop delay p99 ms'] ?? -1) >= 0, 'the event-loop delay was sampled');
    // The bare-uWS ceilings ran through the raw-socket generator, and chatd's figures were set against them.
    const ceiling = (name: string): number => json.results.ceilings?.find((row) => name in row.figures)?.figures[name] ?? 0;
    assert.ok(ceiling('echoes/s') > 0 && ceiling('deliveries/s') > 0, `the uWS ceilings were measured: ${JSON.stringify(json.results.ceilings)}`);
    assert.ok(ceiling('percent of ceiling') > 0, 'chatd figures of the run are shown as a share of a ceiling');
    const statements = json.results.ceilings?.find((row) => 'cpu µs per msg' in row.figures)?.figures ?? {};
    assert.ok((statements['msg/s'] ?? 0) > 0 && (statements['cpu µs per msg'] ?? 0) > 0, `chatd's send statements were measured: ${JSON.stringify(statements)}`);
    // The relay floor answered the direct pairs' generator at each rate (acks and deliveries came back, no error frame).
    const relay = json.results.ceilings?.filter((row) => row.setting.startsWith('relay floor')) ?? [];
    assert.deepEqual(relay.map((row) => /(\d[\d,]*) msg\/s offered|saturated/.exec(row.setting)?.[0]), ['200 msg/s offered', '2,000 msg/s offered', '20,000 msg/s offered', 'saturated']);
    for (const row of relay) {
      assert.ok((row.figures['acked msg/s'] ?? 0) > 0 && (row.figures['server cpu µs/msg'] ?? 0) > 0 && row.figures['errors'] === 0, `the relay floor was measured: ${JSON.stringify(row)}`);
    }
  });

  it('runs its servers with the Node.js flags of the Docker image', () => {
    const nodeOptions = /^\s*NODE_OPTIONS=(.*?)\s*\\?$/m.exec(readFileSync(`${ROOT}/Dockerfile`, 'utf8'))?.[1];
    assert.equal(nodeOptions, DOCKER_NODE_FLAGS.join(' '));
  });

  it('refuses an unknown scenario with the list of scenarios and exit code 2', async () => {
    const failure = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--scenario', 'nope'], { cwd: ROOT, env: cleanEnv() }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(failure?.code, 2);
    assert.match(failure?.stderr ?? '', /no scenario "nope"/);
    assert.match(failure?.stderr ?? '', /direct-throughput/);
    // A value that starts with a dash must follow an =; said plainly, with the usage.
    const flags = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--server-node-flags', '--max-semi-space-size=32'], { cwd: ROOT, env: cleanEnv() }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(flags?.code, 2);
    assert.match(flags?.stderr ?? '', /--server-node-flags=/);
    assert.match(flags?.stderr ?? '', /usage: npm run bench/);
    // Several nodes share one database: without PostgreSQL they are refused, and so is a scenario that runs on SQLite only.
    for (const [args, problem] of [
      [['--nodes', '2'], /--nodes above 1 needs --storage postgres/],
      [['--storage', 'postgres', '--scenario', 'idle-connections'], /scenario "idle-connections" runs on SQLite only/],
      [['--storage', 'mysql'], /--storage must be sqlite or postgres/],
    ] as const) {
      const refused = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args], { cwd: ROOT, env: cleanEnv() }).then(
        () => undefined,
        (error: { code: number; stderr: string }) => error,
      );
      assert.equal(refused?.code, 2, args.join(' '));
      assert.match(refused?.stderr ?? '', problem);
    }
  });
});
