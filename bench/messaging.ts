/**
 * Messaging benchmark: starts the real server (the built bin/chatd, as users run
 * it) on a free port with a temporary data directory, drives it over WebSocket
 * from this process, and prints what it measured. No assertions on timings.
 *
 *   npm run bench                    (builds dist/ first if it is missing or older than src/)
 *   BENCH_QUICK=1 npm run bench      (a tenth of the messages, for a smoke run)
 *
 * What it measures (see bench/README.md):
 *   (i)   send throughput and ack latency, N connections sending in one N-member group, synchronous full and normal;
 *   (ii)  fanout: one message to a 200-member group with every member online, time until all connections have it;
 *   (iii) inbox drain: a device reconnecting with 5,000 messages waiting, time until inbox_done.
 *
 * The load generator shares the machine (and, on a small one, the cores) with the
 * server, so figures are end-to-end as a client sees them, client work included.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { logIn, signUp } from '../test/helpers/http.js';
import { type ServerProcess, startServer } from '../test/helpers/processes.js';
import { tempDir, writeConfig } from '../test/helpers/tmp.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const QUICK = process.env.BENCH_QUICK === '1';
const scale = (n: number): number => (QUICK ? Math.max(100, Math.round(n / 10)) : n);

/** Throughput runs: senders (connections, one per member) and messages in total. */
const THROUGHPUT_RUNS = [
  { senders: 1, messages: scale(2000) },
  { senders: 10, messages: scale(5000) },
  { senders: 50, messages: scale(10000) },
];
const FANOUT_MEMBERS = 200;
const FANOUT_MESSAGES = QUICK ? 50 : 300;
const FANOUT_WARMUP = 20;
const INBOX_MESSAGES = scale(5000);
const INBOX_RECONNECTS = 5;
/** Receivers acknowledge (`delivered`) every this many messages, as a client would, so inboxes stay small. */
const DELIVERED_EVERY = 1000;

type Frame = any;

// ---------------------------------------------------------------- build

/** The bench runs the built server: build when dist/ is missing or older than any source file. */
function ensureBuilt(): void {
  const main = join(ROOT, 'dist', 'main.js');
  const newest = (dir: string): number =>
    Math.max(0, ...readdirSync(dir, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs)));
  if (existsSync(main) && statSync(main).mtimeMs >= newest(join(ROOT, 'src'))) return;
  console.log('building dist/ (npm run build) …');
  execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit' });
}

// ---------------------------------------------------------------- a lean client

/**
 * One authenticated WebSocket. Replies are matched by id; message events are
 * only counted (their text kept for the last one), not parsed, so that the load
 * generator spends as little CPU as it can.
 */
class Client {
  messages = 0;
  lastMessage = '';
  /** Called on every message event. */
  onMessage: (() => void) | undefined;
  private readonly pending = new Map<string, (frame: Frame) => void>();
  private counter = 0;
  private inboxDone: ((frame: Frame) => void) | undefined;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => this.receive(data.toString()));
    ws.on('error', () => {});
  }

  /** Connects, authenticates, and waits for the inbox; returns the client and how long auth → inbox_done took. */
  static async connect(url: string, token: string): Promise<{ client: Client; inbox: number; overflow: boolean; ms: number }> {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const client = new Client(ws);
    const closed = new Promise<never>((_, reject) =>
      ws.once('close', (code, reason) => reject(new Error(`the server closed the connection before inbox_done: ${code} ${reason.toString()}`))),
    );
    closed.catch(() => {});
    const done = new Promise<Frame>((resolve) => (client.inboxDone = resolve));
    const started = performance.now();
    const welcome = await Promise.race([client.request({ type: 'auth', token }), closed]);
    if (welcome.type !== 'welcome') throw new Error(`auth failed: ${JSON.stringify(welcome)}`);
    const inboxDone = await Promise.race([done, closed]);
    const ms = performance.now() - started;
    if (inboxDone.count !== client.messages) throw new Error(`inbox_done says ${inboxDone.count}, ${client.messages} came`);
    client.messages = 0;
    return { client, inbox: inboxDone.count, overflow: inboxDone.overflow, ms };
  }

  private receive(text: string): void {
    if (text.startsWith('{"type":"message"')) {
      this.messages++;
      this.lastMessage = text;
      this.onMessage?.();
      return;
    }
    const frame = JSON.parse(text);
    if (typeof frame.id === 'string') {
      const reply = this.pending.get(frame.id);
      if (reply) {
        this.pending.delete(frame.id);
        reply(frame);
        return;
      }
    }
    if (frame.type === 'inbox_done') this.inboxDone?.(frame);
    else if (frame.type === 'error') throw new Error(`unexpected error frame: ${text}`);
    // receipts, presence updates: not measured
  }

  request(frame: Record<string, unknown>): Promise<Frame> {
    const id = `r${++this.counter}`;
    const reply = new Promise<Frame>((resolve) => this.pending.set(id, resolve));
    this.ws.send(JSON.stringify({ ...frame, id }));
    return reply;
  }

  async expect(frame: Record<string, unknown>, type: string): Promise<Frame> {
    const reply = await this.request(frame);
    if (reply.type !== type) throw new Error(`expected ${type} for ${JSON.stringify(frame).slice(0, 200)}, got ${JSON.stringify(reply)}`);
    return reply;
  }

  /** Resolves once `condition` holds, checked after each message event. */
  until(condition: () => boolean): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve) => {
      const previous = this.onMessage;
      this.onMessage = () => {
        previous?.();
        if (condition()) {
          this.onMessage = previous;
          resolve();
        }
      };
    });
  }

  /** Acknowledges everything up to the last message seen (cumulative per thread). */
  async acknowledge(): Promise<void> {
    if (!this.lastMessage) return;
    const { message } = JSON.parse(this.lastMessage);
    await this.expect({ type: 'delivered', thread_id: message.thread_id, seq: message.seq }, 'delivered');
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise((resolve) => this.ws.once('close', resolve));
    this.ws.close();
    await closed;
  }
}

// ---------------------------------------------------------------- helpers

interface User {
  readonly token: string;
  readonly userId: number;
}

/**
 * A server on a fresh data directory. `loadGenerator`: one client process plays
 * every device of a busy group, so lift the per-connection frame limit and give
 * connections room to buffer while it catches up; otherwise only the frame limit
 * is lifted and everything else keeps its default.
 */
async function startBenchServer(synchronous: 'full' | 'normal', loadGenerator: boolean): Promise<ServerProcess> {
  const dir = tempDir('chatd-bench-');
  return startServer([
    '--data',
    join(dir, 'data'),
    '--transport',
    'uws',
    '--log-level',
    'warn',
    '--config',
    writeConfig(
      dir,
      `
[accounts]
registration = "open"
[rate_limit]
login_per_username = 100000
login_per_address = 100000
[storage]
synchronous = "${synchronous}"
[websocket]
frames_per_second = 100000
${loadGenerator ? 'max_buffered_bytes = 268435456' : ''}
[messages]
max_group_members = 1000
`,
    ),
  ]);
}

async function makeUsers(server: ServerProcess, prefix: string, count: number): Promise<User[]> {
  const users: User[] = [];
  for (let start = 0; start < count; start += 20) {
    const batch = Array.from({ length: Math.min(20, count - start) }, (_, i) => signUp(server.url, `${prefix}${start + i}`, 'correct horse', 'bench'));
    users.push(...(await Promise.all(batch)));
  }
  return users;
}

async function createGroup(owner: Client, title: string, members: readonly User[]): Promise<number> {
  const reply = await owner.expect({ type: 'group_create', title, members: members.map((u) => u.userId) }, 'thread');
  return reply.thread.id;
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux); NaN elsewhere. */
function processCpuSeconds(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return Number.NaN;
  }
}

const ownCpuSeconds = (): number => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
};

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] as number;
}

const ms = (value: number): string => (value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : value.toFixed(0));
const int = (value: number): string => Math.round(value).toLocaleString('en-US');

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join(' | ')} |`;
  return [line(headers), `|${widths.map((w, i) => (i === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...rows.map(line)].join('\n');
}

async function connectAll(server: ServerProcess, users: readonly User[]): Promise<Client[]> {
  const clients: Client[] = [];
  for (let start = 0; start < users.length; start += 25) {
    const batch = users.slice(start, start + 25).map(async (user) => (await Client.connect(server.wsUrl, user.token)).client);
    clients.push(...(await Promise.all(batch)));
  }
  return clients;
}

// ---------------------------------------------------------------- (i) throughput and ack latency

interface ThroughputResult {
  readonly synchronous: string;
  readonly senders: number;
  readonly messages: number;
  readonly perSecond: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly deliveredMs: number;
  /** CPU used during the run as a share of one core, by the server and by this load generator. */
  readonly serverCpu: number;
  readonly clientCpu: number;
}

async function throughput(synchronous: 'full' | 'normal'): Promise<ThroughputResult[]> {
  const server = await startBenchServer(synchronous, true);
  try {
    const maxSenders = Math.max(...THROUGHPUT_RUNS.map((r) => r.senders));
    const users = await makeUsers(server, 'sender', maxSenders);
    const results: ThroughputResult[] = [];
    for (const run of THROUGHPUT_RUNS) {
      const members = users.slice(0, run.senders);
      const clients = await connectAll(server, members);
      const threadId = await createGroup(clients[0] as Client, `throughput ${run.senders}`, members.slice(1));
      // group_created reaches every member first.
      await Promise.all(clients.map((c) => c.until(() => c.messages >= 1)));
      for (const client of clients) client.messages = 0;
      // Receivers acknowledge as they go, as a client would.
      for (const client of clients) {
        client.onMessage = () => {
          if (client.messages % DELIVERED_EVERY === 0) void client.acknowledge();
        };
      }

      const latencies: number[] = [];
      const perSender = Math.ceil(run.messages / run.senders);
      const cpuBefore = { server: processCpuSeconds(server.process.pid), client: ownCpuSeconds() };
      const started = performance.now();
      await Promise.all(
        clients.map(async (client, s) => {
          for (let i = 0; i < perSender; i++) {
            const sent = performance.now();
            const ack = await client.request({ type: 'send', thread_id: threadId, client_msg_id: `t${run.senders}-${s}-${i}`, body: { text: `message ${i} from sender ${s}` } });
            latencies.push(performance.now() - sent);
            if (ack.type !== 'ack') throw new Error(`send failed: ${JSON.stringify(ack)}`);
          }
        }),
      );
      const elapsed = performance.now() - started;
      const total = perSender * run.senders;
      // Every member connection gets every message (its own included).
      await Promise.all(clients.map((c) => c.until(() => c.messages >= total)));
      const deliveredMs = performance.now() - started;
      const serverCpu = (processCpuSeconds(server.process.pid) - cpuBefore.server) / (deliveredMs / 1000);
      const clientCpu = (ownCpuSeconds() - cpuBefore.client) / (deliveredMs / 1000);
      await Promise.all(clients.map((c) => c.acknowledge()));
      await Promise.all(clients.map((c) => c.close()));

      latencies.sort((a, b) => a - b);
      results.push({
        synchronous,
        senders: run.senders,
        messages: total,
        perSecond: (total / elapsed) * 1000,
        p50: percentile(latencies, 0.5),
        p99: percentile(latencies, 0.99),
        max: latencies.at(-1) as number,
        deliveredMs,
        serverCpu,
        clientCpu,
      });
      const r = results.at(-1) as ThroughputResult;
      console.log(`  synchronous=${synchronous} senders=${run.senders}: ${int(r.perSecond)} msg/s, ack p50 ${ms(r.p50)} ms, p99 ${ms(r.p99)} ms`);
    }
    return results;
  } finally {
    await server.stop();
  }
}

// ---------------------------------------------------------------- (ii) fanout and (iii) inbox drain

interface FanoutResult {
  readonly members: number;
  readonly messages: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly ackP50: number;
}

async function fanout(server: ServerProcess): Promise<FanoutResult> {
  const users = await makeUsers(server, 'member', FANOUT_MEMBERS);
  const clients = await connectAll(server, users);
  const sender = clients[0] as Client;
  const threadId = await createGroup(sender, 'two hundred', users.slice(1));
  await Promise.all(clients.map((c) => c.until(() => c.messages >= 1)));

  let received = 0;
  let allReceived: (() => void) | undefined;
  for (const client of clients) {
    client.onMessage = () => {
      if (++received === clients.length) allReceived?.();
    };
  }
  const times: number[] = [];
  const acks: number[] = [];
  for (let i = 0; i < FANOUT_WARMUP + FANOUT_MESSAGES; i++) {
    received = 0;
    const everyone = new Promise<void>((resolve) => (allReceived = resolve));
    const started = performance.now();
    const ack = sender.request({ type: 'send', thread_id: threadId, client_msg_id: `f${i}`, body: { text: `to all ${i}` } }).then(() => performance.now() - started);
    await everyone;
    const took = performance.now() - started;
    const ackMs = await ack;
    if (i >= FANOUT_WARMUP) {
      times.push(took);
      acks.push(ackMs);
    }
  }
  await Promise.all(clients.map((c) => c.close()));
  times.sort((a, b) => a - b);
  acks.sort((a, b) => a - b);
  return {
    members: clients.length,
    messages: times.length,
    p50: percentile(times, 0.5),
    p99: percentile(times, 0.99),
    max: times.at(-1) as number,
    ackP50: percentile(acks, 0.5),
  };
}

interface InboxResult {
  readonly messages: number;
  readonly bytes: number;
  readonly runs: number[];
}

async function inboxDrain(server: ServerProcess): Promise<InboxResult> {
  const writer = await signUp(server.url, 'writer', 'correct horse', 'laptop');
  const reader = await signUp(server.url, 'reader', 'correct horse', 'phone');
  // The reader's phone logged in once and is offline while the messages arrive.
  const { client } = await Client.connect(server.wsUrl, writer.token);
  const threadId = (await client.expect({ type: 'direct_open', user_id: reader.userId }, 'thread')).thread.id;
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < INBOX_MESSAGES) {
        const i = next++;
        await client.expect({ type: 'send', thread_id: threadId, client_msg_id: `i${i}`, body: { text: `while you were away, number ${i}` } }, 'ack');
      }
    }),
  );
  await client.close();

  // Nothing is acknowledged between reconnects, so each one drains the same full inbox.
  const runs: number[] = [];
  let bytes = 0;
  for (let i = 0; i < INBOX_RECONNECTS; i++) {
    const connected = await Client.connect(server.wsUrl, reader.token);
    if (connected.inbox !== INBOX_MESSAGES || connected.overflow) throw new Error(`expected an inbox of ${INBOX_MESSAGES}, got ${connected.inbox} (overflow ${connected.overflow})`);
    runs.push(connected.ms);
    bytes = Buffer.byteLength(connected.client.lastMessage) * INBOX_MESSAGES;
    if (i === INBOX_RECONNECTS - 1) await connected.client.acknowledge();
    await connected.client.close();
  }
  const after = await Client.connect(server.wsUrl, reader.token);
  if (after.inbox !== 0) throw new Error(`the inbox should be empty once acknowledged, holds ${after.inbox}`);
  await after.client.close();
  return { messages: INBOX_MESSAGES, bytes, runs: runs.sort((a, b) => a - b) };
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  ensureBuilt();
  const benchStarted = performance.now();
  const cpu = cpus();
  console.log(`chatd messaging bench: node ${process.version}, ${process.platform}/${process.arch}, ${cpu.length} CPU(s) (${cpu[0]?.model.trim() ?? '?'}), transport uws${QUICK ? ', QUICK' : ''}`);
  console.log('server and load generator share this machine; times are client-side, end to end.\n');

  console.log('(i) send throughput …');
  const sends = [...(await throughput('full')), ...(await throughput('normal'))];

  console.log(`(ii) fanout to ${FANOUT_MEMBERS} members, (iii) inbox drain of ${INBOX_MESSAGES} …`);
  const server = await startBenchServer('full', false);
  let fan: FanoutResult;
  let inbox: InboxResult;
  try {
    fan = await fanout(server);
    inbox = await inboxDrain(server);
  } finally {
    await server.stop();
  }

  console.log('\n(i) send throughput: N connections in one N-member group, each keeping one send in flight (send, await ack, repeat);');
  console.log(`    groups of up to 100 members use inboxes, so each message also writes N-1 inbox rows; receivers ack \`delivered\` every ${DELIVERED_EVERY} messages`);
  console.log(
    table(
      ['synchronous', 'senders', 'messages', 'msg/s', 'ack p50 ms', 'ack p99 ms', 'ack max ms', 'all delivered s', 'server cpu', 'bench cpu'],
      sends.map((r) => [
        r.synchronous,
        String(r.senders),
        int(r.messages),
        int(r.perSecond),
        ms(r.p50),
        ms(r.p99),
        ms(r.max),
        (r.deliveredMs / 1000).toFixed(2),
        `${Math.round(r.serverCpu * 100)}%`,
        `${Math.round(r.clientCpu * 100)}%`,
      ]),
    ),
  );
  console.log('  "all delivered": until every member connection had every message (N × messages frames), from the first send.');
  console.log('  cpu: share of one core used from the first send to "all delivered", by the server process and by this load generator.\n');

  console.log(`(ii) fanout: one message at a time to a ${fan.members}-member group, every member online (one connection each; read diffusion, no inbox rows);`);
  console.log('     (ii) and (iii) run with default websocket limits but frames_per_second');
  console.log(
    table(
      ['members', 'messages', 'all received p50 ms', 'p99 ms', 'max ms', 'sender ack p50 ms'],
      [[String(fan.members), String(fan.messages), ms(fan.p50), ms(fan.p99), ms(fan.max), ms(fan.ackP50)]],
    ),
  );
  console.log(`  from the send until all ${fan.members} connections (the sender's own included) had the message; ${FANOUT_WARMUP} warm-up messages not counted.\n`);

  console.log(`(iii) inbox drain: a device reconnects with ${int(inbox.messages)} messages waiting (~${(inbox.bytes / 1e6).toFixed(1)} MB of frames)`);
  console.log(
    table(
      ['messages', 'reconnects', 'auth → inbox_done p50 ms', 'min ms', 'max ms', 'messages/s (p50)'],
      [[int(inbox.messages), String(inbox.runs.length), ms(percentile(inbox.runs, 0.5)), ms(inbox.runs[0] as number), ms(inbox.runs.at(-1) as number), int((inbox.messages / percentile(inbox.runs, 0.5)) * 1000)]],
    ),
  );
  console.log(`\nbench took ${((performance.now() - benchStarted) / 1000).toFixed(1)} s`);
}

await main();
