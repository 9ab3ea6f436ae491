/**
 * One load-generator thread. It opens its share of the connections, says
 * `ready`, runs its task on `start`, and reports on `stop` (or when the task
 * ends by itself). Kept lean: frames are built from templates, incoming frames
 * are recognised by their first bytes and parsed only where a figure needs it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import WebSocket from 'ws';
import type { GenTask, Transport, WorkerReport } from './gen-protocol.js';
import { RawStream, type StreamAgents, streamAgents, upCounts } from './raw-stream.js';
import { RawWebSocket, frameType, numberIn } from './raw-ws.js';

const task = workerData as GenTask;
const now = (): number => performance.timeOrigin + performance.now();
const port = parentPort as NonNullable<typeof parentPort>;

/** A connection that has authenticated and drained its inbox, on whichever transport. */
interface Conn {
  send(text: string): void;
  close(): void;
  onFrame: (text: string) => void;
}

const transport: Transport = (task.kind === 'pairs' || task.kind === 'idle' ? task.transport : undefined) ?? 'websocket';
/** The stream clients of this thread share keep-alive agents; the POSTs get about one socket per device that sends. */
let agents: StreamAgents | undefined;

function open(token: string, onInbox?: (count: number) => void, url = task.wsUrl): Promise<Conn> {
  return transport === 'websocket' ? openWebSocket(token, onInbox, url) : openStream(token, transport, onInbox, url);
}

function openWebSocket(token: string, onInbox: ((count: number) => void) | undefined, url: string): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const conn: Conn = { send: (text) => ws.send(text), close: () => ws.terminate(), onFrame: () => {} };
    let inbox = 0;
    ws.on('error', reject);
    ws.on('open', () => ws.send(JSON.stringify({ type: 'auth', id: 'a', token })));
    ws.on('close', (code) => reject(new Error(`closed with ${code} before inbox_done`)));
    ws.on('message', function first(data) {
      const text = data.toString();
      if (text.startsWith('{"type":"message"')) inbox++;
      else if (text.startsWith('{"type":"error"')) reject(new Error(text));
      else if (text.startsWith('{"type":"inbox_done"')) {
        ws.off('message', first);
        ws.removeAllListeners('close');
        ws.on('close', () => {});
        ws.on('message', (frame) => conn.onFrame(frame.toString()));
        onInbox?.(inbox);
        resolve(conn);
      }
    });
  });
}

/** The same, on /v1/stream (raw-stream.ts): the server's http URL is the WebSocket URL's host. */
function openStream(token: string, mode: 'stream' | 'poll', onInbox: ((count: number) => void) | undefined, url: string): Promise<Conn> {
  const { host } = new URL(url);
  agents ??= streamAgents(task.kind === 'pairs' ? task.pairs.length * 2 : 16);
  return new Promise((resolve, reject) => {
    let inbox = 0;
    let live = false;
    const conn: Conn = { send: () => {}, close: () => {}, onFrame: () => {} };
    RawStream.open(`http://${host}`, token, mode, agents as StreamAgents, {
      onFrame: (text) => {
        if (live) return conn.onFrame(text);
        if (text.startsWith('{"type":"message"')) inbox++;
        else if (text.startsWith('{"type":"error"')) reject(new Error(text));
        else if (text.startsWith('{"type":"inbox_done"')) {
          live = true;
          onInbox?.(inbox);
          resolve(conn);
        }
      },
      onClose: (why) => {
        if (!live) reject(new Error(`stream ${why} before inbox_done`));
        else streamErrors++;
      },
    }).then((stream) => {
      conn.send = (text) => stream.send(text);
      conn.close = () => stream.destroy();
    }, reject);
  });
}

/** Stream sessions that failed after they were up (a refused POST, a closed session): counted as errors. */
let streamErrors = 0;

/** The number after `"key":` in a frame, without parsing the frame. */
function numberAfter(text: string, key: string, from = 0): number {
  const at = text.indexOf(key, from);
  if (at < 0) return Number.NaN;
  let end = at + key.length;
  while (end < text.length && '0123456789.'.includes(text[end] as string)) end++;
  return Number(text.slice(at + key.length, end));
}

const PAD = 'x'.repeat(task.kind === 'pairs' || task.kind === 'group' ? task.padBytes : 0);
const SAMPLE_MAX = 200_000;
/**
 * client_msg_ids must not repeat across runs against the same server: the server would take them for resends.
 * `${RUN}-${n}` also sorts (nearly) in the order the ids are made, as the SDK's time-ordered UUIDv7 ids do.
 */
const RUN = `${Date.now().toString(36)}${task.worker}`;

/** Values seen per sample array, for reservoir sampling. */
const seen = new WeakMap<number[], number>();

/** Reservoir sampling: past SAMPLE_MAX values, each value of the run has the same chance to be kept. */
function sample(into: number[], value: number): void {
  const count = (seen.get(into) ?? 0) + 1;
  seen.set(into, count);
  if (into.length < SAMPLE_MAX) into.push(value);
  else if (Math.random() * count < SAMPLE_MAX) into[Math.floor(Math.random() * SAMPLE_MAX)] = value;
}

async function runPairs(t: Extract<GenTask, { kind: 'pairs' }>): Promise<void> {
  let counting = false;
  const report: WorkerReport = { acked: 0, delivered: 0, ackLatencies: [], deliverLatencies: [], errors: 0, lastDelivery: [] };
  const senders: Array<{ conn: Conn; threadId: number; next: number; inFlight: number }> = [];
  let running = false;
  let seq = 0;
  const sdkAcks = t.receiverAcks === 'sdk' || t.receiverAcks === 'sdk-read';
  const sdkReads = t.receiverAcks === 'sdk-read';
  /** Send times by request id, in a ring: an ack carries the id of its send. */
  const sentAt = new Float64Array(1 << 16);
  const send = (sender: (typeof senders)[number]): void => {
    const n = ++seq;
    sentAt[n & 0xffff] = now();
    sender.inFlight++;
    sender.conn.send(`{"type":"send","id":"${n}","thread_id":${sender.threadId},"client_msg_id":"${RUN}-${n}","body":{"t":${now()},"p":"${PAD}"}}`);
  };
  await Promise.all(
    t.pairs.map(async (pair) => {
      const [senderConn, receiverConn] = await Promise.all([open(pair.senderToken), open(pair.receiverToken, undefined, pair.receiverWsUrl)]);
      const sender = { conn: senderConn, threadId: pair.threadId, next: 0, inFlight: 0 };
      senders.push(sender);
      senderConn.onFrame = (text) => {
        if (text.startsWith('{"type":"ack"')) {
          sender.inFlight--;
          if (counting) {
            report.acked++;
            sample(report.ackLatencies, now() - (sentAt[numberAfter(text, '"id":"') & 0xffff] as number));
          }
          if (t.mode.kind === 'window' && running) send(sender);
        } else if (text.startsWith('{"type":"error"')) report.errors++;
      };
      let unacked = 0;
      // SDK-like acks: the highest seq seen, the highest the server confirmed, one ack out at a time; reads alike.
      const ack = { seen: 0, acked: 0, inFlight: false, due: false };
      const read = { acked: 0, inFlight: false };
      const sendAck = (): void => {
        ack.due = false;
        if (!ack.inFlight && ack.seen > ack.acked) {
          ack.inFlight = true;
          receiverConn.send(`{"type":"delivered","id":"d","thread_id":${pair.threadId},"seq":${ack.seen}}`);
        }
        if (sdkReads && !read.inFlight && ack.seen > read.acked) {
          read.inFlight = true;
          receiverConn.send(`{"type":"read","id":"r","thread_id":${pair.threadId},"seq":${ack.seen}}`);
        }
      };
      // After the frames of this socket read (the `ws` package hands them over in one go), as the SDK's setTimeout 0.
      const ackSoon = (): void => {
        if (ack.due) return;
        ack.due = true;
        setImmediate(sendAck);
      };
      receiverConn.onFrame = (text) => {
        if (sdkAcks && text.startsWith('{"type":"delivered"')) {
          ack.inFlight = false;
          ack.acked = Math.max(ack.acked, numberAfter(text, '"seq":'));
          return ackSoon();
        }
        if (sdkReads && text.startsWith('{"type":"read_state"')) {
          read.inFlight = false;
          read.acked = Math.max(read.acked, numberAfter(text, '"read_seq":'));
          return ackSoon();
        }
        if (!text.startsWith('{"type":"message"')) return;
        if (counting) {
          report.delivered++;
          sample(report.deliverLatencies, now() - numberAfter(text, '"t":'));
        }
        if (sdkAcks) {
          ack.seen = Math.max(ack.seen, numberAfter(text, '"seq":'));
          ackSoon();
        } else if (++unacked >= 200) {
          // Acknowledge now and then, so the receiver's inbox stays small.
          unacked = 0;
          receiverConn.send(`{"type":"delivered","id":"d","thread_id":${pair.threadId},"seq":${numberAfter(text, '"seq":')}}`);
        }
      };
    }),
  );
  port.postMessage({ type: 'ready' });
  await new Promise<void>((resolve) => port.once('message', () => resolve()));
  running = true;
  let ticker: ReturnType<typeof setInterval> | undefined;
  if (t.mode.kind === 'window') {
    for (const sender of senders) for (let i = 0; i < t.mode.window; i++) send(sender);
  } else {
    const perSecond = t.mode.perSecond;
    const started = now();
    let sent = 0;
    let turn = 0;
    ticker = setInterval(() => {
      const due = Math.floor(((now() - started) / 1000) * perSecond) - sent;
      for (let i = 0; i < due; i++) send(senders[turn++ % senders.length] as (typeof senders)[number]);
      sent += Math.max(0, due);
    }, 2);
  }
  setTimeout(() => (counting = true), t.warmupMs);
  await new Promise<void>((resolve) => port.once('message', () => resolve()));
  counting = false;
  running = false;
  clearInterval(ticker);
  report.errors += streamErrors;
  report.posts = upCounts.posts;
  report.postedFrames = upCounts.frames;
  port.postMessage({ type: 'result', report });
}

/**
 * Group fanout on raw sockets (raw-ws.ts): every member of a group receives its
 * messages in the topic's one order, so message i of a group is the i-th message
 * frame on each member connection; the worker keeps, per group, the last arrival
 * of each index, and reads the send time of each index from one connection only.
 */
async function runGroup(t: Extract<GenTask, { kind: 'group' }>): Promise<void> {
  const report: WorkerReport = { acked: 0, delivered: 0, ackLatencies: [], deliverLatencies: [], errors: 0, lastDelivery: [] };
  const T = Buffer.from('"t":');
  const SEQ = Buffer.from('"seq":');
  let counting = false;
  let running = false;
  interface Group { last: number[]; sent: number[]; members: Array<{ count: number; startAt: number; stopAt: number }> }
  const groups = new Map<number, Group>();
  const senders: Array<{ ws: RawWebSocket; threadId: number; index: number; n: number }> = [];
  const send = (sender: (typeof senders)[number]): void => {
    sender.ws.send(`{"type":"send","id":"${++sender.n}","thread_id":${sender.threadId},"client_msg_id":"${RUN}-${sender.index}-${sender.n}","body":{"t":${now()},"p":"${PAD}"}}`);
  };
  await Promise.all(
    t.members.map(async (member) => {
      const ws = await RawWebSocket.connect(member.wsUrl ?? task.wsUrl);
      let group = groups.get(member.threadId);
      if (!group) groups.set(member.threadId, (group = { last: [], sent: [], members: [] }));
      const g = group;
      const reader = g.members.length === 0; // the one connection per group that reads send times
      const state = { count: 0, startAt: 0, stopAt: 0 };
      g.members.push(state);
      const sender = member.senderIndex === undefined ? undefined : { ws, threadId: member.threadId, index: member.senderIndex, n: 0 };
      if (sender) senders.push(sender);
      // The device's acks, as the SDK's receiver sends them: the highest seq seen, the last one the server confirmed.
      const ack = { seen: 0, acked: 0, inFlight: false };
      let live = false;
      if (t.acks) {
        // After a socket read's frames: one `delivered` for the thread, unless one is still out (its reply frees the slot).
        ws.onChunkDone = () => {
          if (!live || ack.inFlight || ack.seen <= ack.acked) return;
          ack.inFlight = true;
          ws.send(`{"type":"delivered","id":"d","thread_id":${member.threadId},"seq":${ack.seen}}`);
        };
      }
      await new Promise<void>((resolve, reject) => {
        ws.onClose = () => {
          if (live) report.errors++; // cut off during the run (a slow consumer): its member's figures stop there
          else reject(new Error('the server closed a group member connection before inbox_done'));
        };
        ws.onText = (buffer, start, end, at) => {
          const type = frameType(buffer, start);
          if (!live) {
            if (type === 'inbox_done') {
              live = true;
              resolve();
            } else if (type === 'other' && buffer.toString('latin1', start, Math.min(end, start + 16)).startsWith('{"type":"error"')) {
              reject(new Error(`auth refused: ${buffer.toString('utf8', start, end)}`));
            }
            return;
          }
          if (type === 'message') {
            const index = state.count++;
            if ((g.last[index] ?? 0) < at) g.last[index] = at;
            if (reader) g.sent[index] = numberIn(buffer, start, end, T);
            if (counting) report.delivered++;
            // Messages come in seq order with every member online: the highest seen is the highest without a gap.
            if (t.acks) ack.seen = Math.max(ack.seen, numberIn(buffer, start, end, SEQ));
          } else if (sender && type === 'ack') {
            if (counting) report.acked++;
            if (running) send(sender);
          } else if (type === 'receipt') {
            if (counting) report.receipts = (report.receipts ?? 0) + 1;
          } else if (type === 'delivered') {
            ack.inFlight = false;
            const seq = numberIn(buffer, start, end, SEQ);
            if (seq > ack.acked) {
              ack.acked = seq;
              if (counting) report.cursorMoves = (report.cursorMoves ?? 0) + 1;
            }
          } else if (buffer[start + 9] === 0x65 /* e */ && buffer[start + 10] === 0x72 /* r */) {
            // An error reply (a refused ack or send) while live.
            report.errors++;
            ack.inFlight = false;
          }
        };
        ws.send(`{"type":"auth","id":"a","token":"${member.token}"}`);
      });
    }),
  );
  port.postMessage({ type: 'ready' });
  await new Promise<void>((resolve) => port.once('message', () => resolve()));
  running = true;
  for (const sender of senders) for (let i = 0; i < t.window; i++) send(sender);
  setTimeout(() => {
    counting = true;
    for (const g of groups.values()) for (const m of g.members) m.startAt = m.count;
  }, t.warmupMs);
  await new Promise<void>((resolve) => port.once('message', () => resolve()));
  counting = false;
  running = false;
  for (const [threadId, g] of groups) {
    // Indexes every member of this worker received within the measured window.
    const from = Math.max(...g.members.map((m) => m.startAt));
    const to = Math.min(...g.members.map((m) => m.count));
    for (let i = from; i < to; i++) report.lastDelivery.push([threadId * 2 ** 20 + i, g.sent[i] ?? Number.NaN, g.last[i] ?? Number.NaN]);
  }
  for (const g of groups.values()) g.members.length = 0;
  port.postMessage({ type: 'result', report });
}

async function runIdle(t: Extract<GenTask, { kind: 'idle' }>): Promise<void> {
  const conns: Conn[] = [];
  for (let i = 0; i < t.tokens.length; i += 50) conns.push(...(await Promise.all(t.tokens.slice(i, i + 50).map((token) => open(token)))));
  let pongs = 0;
  for (const conn of conns) conn.onFrame = (text) => void (text.startsWith('{"type":"pong"') && pongs++);
  port.postMessage({ type: 'ready' });
  await new Promise<void>((resolve) => port.once('message', () => resolve())); // start
  // Each device pings once per interval, at its own moment in it, as real clients spread over time would.
  const started = now();
  let next = 0;
  const ping = setInterval(() => {
    const due = Math.floor(((now() - started) / t.heartbeatMs) * conns.length);
    for (; next < due; next++) conns[next % conns.length]?.send('{"type":"ping","id":"p"}');
  }, 20);
  await new Promise<void>((resolve) => port.once('message', () => resolve())); // stop
  clearInterval(ping);
  for (const conn of conns) conn.close();
  // acked: heartbeats answered while running.
  port.postMessage({ type: 'result', report: { acked: pongs, delivered: conns.length, ackLatencies: [], deliverLatencies: [], errors: 0, lastDelivery: [] } });
}

async function runStorm(t: Extract<GenTask, { kind: 'storm' }>): Promise<void> {
  port.postMessage({ type: 'ready' });
  await new Promise<void>((resolve) => port.once('message', () => resolve()));
  const report: WorkerReport = { acked: 0, delivered: 0, ackLatencies: [], deliverLatencies: [], errors: 0, lastDelivery: [] };
  const conns = await Promise.all(
    t.tokens.map((token) =>
      open(token, (count) => {
        report.delivered += count;
        report.deliverLatencies.push(now());
      }).catch(() => {
        report.errors++;
        return undefined;
      }),
    ),
  );
  for (const conn of conns) conn?.close();
  port.postMessage({ type: 'result', report });
}

/**
 * The bare-uWS ceilings on raw sockets, as lean as the generator gets: frames
 * are built once, arrivals are counted without reading them, and each chunk's
 * arrivals are answered with one write of that many frames.
 */
async function runRaw(t: Extract<GenTask, { kind: 'raw' }>): Promise<void> {
  const report: WorkerReport = { acked: 0, delivered: 0, ackLatencies: [], deliverLatencies: [], errors: 0, lastDelivery: [] };
  let counting = false;
  let running = false;
  const starts: Array<() => void> = [];
  const sockets = await Promise.all(
    Array.from({ length: t.connections }, async (_, index) => {
      const ws = await RawWebSocket.connect(t.wsUrl);
      const publisher = index < t.publishers;
      // Each sender's frames carry its tag at a fixed place, `{"f":"WNN"` (worker, index), so that it
      // can tell its own messages among the copies of every publisher's.
      const tag = Buffer.from(`${t.worker % 10}${String(index % 100).padStart(2, '0')}`);
      const { frames, frameLength } = RawWebSocket.textFrames(`{"f":"${tag.toString()}","type":"send","thread_id":1,"body":{"p":"${'x'.repeat(160)}"}}`, t.window);
      let own = 0;
      ws.onText = (buffer, start) => {
        if (counting) report.delivered++;
        if (publisher && buffer[start + 6] === tag[0] && buffer[start + 7] === tag[1] && buffer[start + 8] === tag[2]) own++;
      };
      // Echo: every reply frees a slot. Publish: the copy of its own message that comes back to the publisher does.
      ws.onChunkDone = () => {
        if (running && own > 0) {
          if (counting) report.acked += own;
          ws.sendFrames(frames.subarray(0, Math.min(own, t.window) * frameLength));
        }
        own = 0;
      };
      if (publisher) starts.push(() => ws.sendFrames(frames));
      return ws;
    }),
  );
  port.postMessage({ type: 'ready' });
  await new Promise<void>((resolve) => port.once('message', () => resolve()));
  running = true;
  for (const start of starts) start();
  setTimeout(() => (counting = true), t.warmupMs);
  await new Promise<void>((resolve) => port.once('message', () => resolve()));
  running = false;
  counting = false;
  for (const ws of sockets) ws.destroy();
  port.postMessage({ type: 'result', report });
}

const run = { pairs: runPairs, group: runGroup, idle: runIdle, storm: runStorm, raw: runRaw }[task.kind] as (t: GenTask) => Promise<void>;
run(task).catch((error: unknown) => port.postMessage({ type: 'failed', message: String((error as Error)?.stack ?? error) }));
