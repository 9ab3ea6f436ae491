/**
 * chatd benchmarks: `npm run bench [-- --scenario NAME[,NAME] --quick --workers N]`.
 * Each scenario starts a real `chatd serve` (the built bin/chatd) on a temporary
 * data directory, drives it over real WebSockets from load-generator threads,
 * and prints a table; the run is also written to bench/results/ as JSON and
 * Markdown. See bench/README.md and docs/performance.md.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { placeProcesses } from './lib/machine.js';
import { DOCKER_NODE_FLAGS } from './lib/server.js';
import { type DeploymentOptions, describeDeployment } from './lib/deployment.js';
import { postgresBin } from '../test/helpers/postgres.js';
import type { Context, Result, Scenario } from './lib/scenario.js';
import { formatCount, formatMs, formatPercent } from './lib/stats.js';
import { ceilings } from './scenarios/ceilings.js';
import { coldStart } from './scenarios/cold-start.js';
import { directLatency, directThroughput } from './scenarios/direct.js';
import { e2eCrypto } from './scenarios/e2e-crypto.js';
import { fallback } from './scenarios/fallback.js';
import { groupFanout } from './scenarios/group.js';
import { groupAcks } from './scenarios/group-acks.js';
import { idleConnections } from './scenarios/idle.js';
import { reconnectStorm } from './scenarios/storm.js';
import { upload } from './scenarios/upload.js';
import { writerThread } from './scenarios/writer-thread.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SCENARIOS: readonly Scenario[] = [directThroughput, directLatency, groupFanout, groupAcks, idleConnections, fallback, reconnectStorm, coldStart, ceilings, e2eCrypto, upload, writerThread];

function usage(problem?: string): never {
  const lines = [
    ...(problem ? [`bench: ${problem}`, ''] : []),
    'usage: npm run bench -- [--scenario NAME[,NAME...]] [--quick] [--workers N] [--storage sqlite|postgres] [--nodes N] [--profile DIR] [--server-node-flags FLAGS]',
    '  --storage postgres   chatd on a PostgreSQL the bench starts (durable: fsync and synchronous_commit on); default sqlite',
    '  --nodes N            with --storage postgres: N chatd nodes and a redis-server between them, the clients spread across the nodes (default 1)',
    `                       these run only ${SCENARIOS.filter((scenario) => scenario.anyDeployment).map((scenario) => scenario.name).join(', ')}; every server-side process shares the server's cores`,
    '  --profile DIR   each chatd server writes a V8 CPU profile (.cpuprofile) into DIR when it stops',
    `  --server-node-flags=FLAGS   Node.js flags for the servers, space-separated, after an = (default: "${DOCKER_NODE_FLAGS.join(' ')}", as the Docker image;`,
    '                              --server-node-flags= for none)',
    '',
    'scenarios (all but the experiments by default, in this order):',
    ...SCENARIOS.map((scenario) => `  ${scenario.name.padEnd(18)} ${scenario.summary}`),
  ];
  process.stderr.write(`${lines.join('\n')}\n`);
  process.exit(problem ? 2 : 0);
}

/** The bench runs the built server: build when dist/ is missing or older than any source file. */
function ensureBuilt(): void {
  const main = join(ROOT, 'dist', 'main.js');
  const newest = (dir: string): number =>
    Math.max(0, ...readdirSync(dir, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs)));
  if (existsSync(main) && statSync(main).mtimeMs >= newest(join(ROOT, 'src'))) return;
  console.log('building dist/ (npm run build) …');
  execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit' });
}

function postgresVersion(): string {
  try {
    return /\d+(\.\d+)?/.exec(execFileSync(join(postgresBin(), 'postgres'), ['--version'], { encoding: 'utf8' }))?.[0] ?? '?';
  } catch {
    return '?';
  }
}

function commit(): string {
  try {
    const hash = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'bench'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
    return dirty ? `${hash}-dirty` : hash;
  } catch {
    return 'unknown';
  }
}

function format(name: string, value: number): string {
  if (name.endsWith(' ms')) return formatMs(value);
  if (name.endsWith(' %')) return formatPercent(value);
  if (name.endsWith(' KB')) return value.toFixed(2);
  if (name.endsWith('/POST')) return Number.isFinite(value) ? value.toFixed(1) : '–';
  if (name.endsWith(' ×')) return Number.isFinite(value) ? value.toFixed(2) : '–';
  if (name.endsWith('/delivery')) return Number.isFinite(value) ? value.toPrecision(3) : '–';
  if (name.endsWith('/msg')) return Number.isFinite(value) ? value.toFixed(2) : '–';
  if (name.includes('µs')) return Number.isFinite(value) ? value.toFixed(1) : '–';
  return formatCount(value);
}

function table(results: readonly Result[]): string {
  const names = [...new Set(results.flatMap((result) => Object.keys(result.figures)))];
  const header = ['setting', ...names, 'server cpu', 'generator cpu', 'valid'];
  const rows = results.map((result) => [
    result.setting,
    ...names.map((name) => (name in result.figures ? format(name, result.figures[name] as number) : '')),
    formatPercent(result.serverCpu),
    formatPercent(result.generatorCpu),
    result.valid ? 'yes' : 'NO: generator-bound',
  ]);
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((row) => `| ${row.join(' | ')} |`)];
  const notes = results.filter((result) => result.note).map((result) => `- ${result.setting}: ${result.note}`);
  return [...lines, ...notes].join('\n');
}

/** parseArgs, with a mistake on the command line answered by the usage and exit code 2 instead of a stack trace. */
function parseCommandLine<T extends ParseArgsConfig>(config: T, fail: (problem: string) => never): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (error) {
    return fail((error as Error).message);
  }
}

async function main(): Promise<void> {
  // Every server and temporary directory registers an exit handler; a full run makes dozens.
  process.setMaxListeners(200);
  // Ctrl-C: exit through those handlers, so no server is left running pinned to its core.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
  const { values } = parseCommandLine({
    options: {
      scenario: { type: 'string' },
      quick: { type: 'boolean', default: false },
      workers: { type: 'string' },
      profile: { type: 'string' },
      'server-node-flags': { type: 'string' },
      storage: { type: 'string', default: 'sqlite' },
      nodes: { type: 'string', default: '1' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: false,
  }, usage);
  if (values.help) usage();
  const storage = values.storage;
  if (storage !== 'sqlite' && storage !== 'postgres') usage(`--storage must be sqlite or postgres, not "${storage}"`);
  const nodes = Number(values.nodes);
  if (!Number.isInteger(nodes) || nodes < 1) usage('--nodes must be a positive integer');
  if (nodes > 1 && storage !== 'postgres') usage('--nodes above 1 needs --storage postgres (nodes share one database)');
  const deployment: DeploymentOptions = { storage, nodes };
  // On SQLite every scenario; on PostgreSQL (or several nodes) those that can run there.
  const runsHere = (scenario: Scenario): boolean => storage === 'sqlite' || scenario.anyDeployment === true;
  const wanted = values.scenario ? values.scenario.split(',') : SCENARIOS.filter((scenario) => !scenario.onlyWhenNamed && runsHere(scenario)).map((scenario) => scenario.name);
  for (const name of wanted) {
    const scenario = SCENARIOS.find((candidate) => candidate.name === name);
    if (!scenario) usage(`no scenario "${name}"`);
    if (!runsHere(scenario)) usage(`scenario "${name}" runs on SQLite only`);
  }
  ensureBuilt();
  const placement = placeProcesses();
  const workers = values.workers ? Number(values.workers) : placement.generatorCoreCount;
  if (!Number.isInteger(workers) || workers < 1) usage('--workers must be a positive integer');
  const profileDir = values.profile ? resolve(values.profile) : undefined;
  const flagsGiven = values['server-node-flags'];
  const serverNodeFlags = flagsGiven === undefined ? DOCKER_NODE_FLAGS : flagsGiven.split(/\s+/).filter((flag) => flag !== '');
  const context: Context = { placement, quick: values.quick ?? false, workers, profileDir, serverNodeFlags, deployment, earlier: new Map(), log: (line) => console.log(line) };
  const started = new Date();
  const header = [
    `chatd bench, ${started.toISOString()}, commit ${commit()}${context.quick ? ', --quick' : ''}`,
    `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; ${placement.description}; ${workers} generator thread(s)`,
    `server: node ${serverNodeFlags.length > 0 ? `${serverNodeFlags.join(' ')} ` : ''}bin/chatd serve${flagsGiven === undefined ? ' (as the Docker image runs it)' : ''}`,
    ...(storage === 'postgres'
      ? [
          `storage: ${describeDeployment(deployment)}; PostgreSQL ${postgresVersion()} started by the bench with its durable defaults (fsync, full_page_writes, synchronous_commit on)${nodes > 1 ? ', redis-server between the nodes' : ''}; all of them on the server's core(s)`,
        ]
      : []),
  ];
  console.log(header.join('\n'));
  const sections: string[] = [];
  for (const scenario of SCENARIOS.filter((s) => wanted.includes(s.name))) {
    console.log(`\n## ${scenario.name}: ${scenario.summary}`);
    const results = await scenario.run(context);
    context.earlier.set(scenario.name, results);
    const text = table(results);
    console.log(`\n${text}`);
    sections.push(`## ${scenario.name}\n\n${scenario.summary}\n\n${text}`);
  }
  const dir = join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const name = `${started.toISOString().slice(0, 19).replace(/[:T]/g, '-')}-${commit()}${storage === 'sqlite' ? '' : `-postgres-${nodes}`}`;
  writeFileSync(join(dir, `${name}.md`), `# ${header.join('\n\n')}\n\n${sections.join('\n\n')}\n`);
  writeFileSync(join(dir, `${name}.json`), `${JSON.stringify({ started, header, results: Object.fromEntries(context.earlier) }, null, 2)}\n`);
  console.log(`\nwritten: bench/results/${name}.md and .json`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
