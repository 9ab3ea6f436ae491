import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import { logIn, signUp } from '../helpers/http.js';
import { type ServerProcess, runCli, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { preferredTransport } from '../helpers/transports.js';
import { type Connected, type TestSocket, connectAuthenticated } from '../helpers/ws.js';

/**
 * The messaging contract under a crash (design.md, "The messaging contract",
 * points 1-7): kill -9 the server while clients are sending, start it again on
 * the same data directory, and check that every acked message is stored exactly
 * once at the seq and id its ack named, that a resend with the same
 * client_msg_id never stores a second copy, that seqs run 1..N without gaps, and
 * that every message reaches every device through its inbox. Several rounds of
 * send / kill / restart / resend, so that the kill lands at different points of
 * the group commit (between a commit and its acks is the interesting one).
 * Everything waits on events (acks, closes, replies), never on timers.
 */

const ROUNDS = 5;
/** Acks to collect in a round before the kill; sends keep flowing while it happens. */
const KILL_AFTER_ACKS = 200;
/** Sender connections per device, and requests each connection keeps in flight. */
const CONNECTIONS_PER_DEVICE = 2;
const WINDOW = 16;

type Frame = any;
type DeviceName = 'a0' | 'a1' | 'b0' | 'c0';
const names: readonly DeviceName[] = ['a0', 'a1', 'b0', 'c0'];

interface Device {
  readonly token: string;
  readonly userId: number;
  readonly deviceId: number;
  /** The threads this device's user is in. */
  threads: number[];
}

/** One message a client meant to send, and what became of it. */
interface Sent {
  readonly round: number;
  readonly device: DeviceName;
  readonly threadId: number;
  readonly clientMsgId: string;
  readonly body: { text: string; n: number };
  /** The ack received before the kill, if any. */
  ack?: { seq: number; messageId: number };
  /** Where it is stored: its ack's, or the resend's after the restart. */
  final?: { seq: number; messageId: number };
}

/** A message a device received live before a kill: fanout follows the commit, so it must survive. */
interface Live {
  readonly messageId: number;
  readonly clientMsgId: string;
  readonly senderDeviceId: number;
}

const key = (threadId: number, seq: number): string => `${threadId}/${seq}`;

// The contract is the storage's; it runs on the transport `auto` would pick, so Node 22/24 without uWS still check it.
describe(`durability: kill -9 while clients send (${preferredTransport}, synchronous = "full")`, () => {
  it('keeps every acked message exactly once, with no seq gaps, and delivers all of it to every device after restarts', { timeout: 120_000 }, async (t) => {
    const started = Date.now();
    const dir = tempDir();
    const dbArgs = [
      '--data',
      join(dir, 'data'),
      '--config',
      writeConfig(
        dir,
        `
[accounts]
registration = "open"
[storage]
synchronous = "full"
[websocket]
frames_per_second = 100000
[limits]
user_sends_per_second = 100000
`,
      ),
    ];
    const args = [...dbArgs, '--transport', preferredTransport];
    let server: ServerProcess = await startServer(args);
    try {
      // ---- alice (two devices), bob, carol; a group of the three and a direct thread alice–bob ----
      const alice0 = await signUp(server.url, 'alice', 'correct horse', 'phone');
      const alice1 = await logIn(server.url, 'alice', 'correct horse', 'laptop');
      const bob0 = await signUp(server.url, 'bob', 'correct horse', 'phone');
      const carol0 = await signUp(server.url, 'carol', 'correct horse', 'phone');
      const devices: Record<DeviceName, Device> = {
        a0: { ...alice0, threads: [] },
        a1: { ...alice1, threads: [] },
        b0: { ...bob0, threads: [] },
        c0: { ...carol0, threads: [] },
      };
      const setup = await connectAuthenticated(server.wsUrl, alice0.token);
      const group: number = (await setup.socket.expect({ type: 'group_create', title: 'Crash test', members: [bob0.userId, 'carol'] }, 'thread')).thread.id;
      const direct: number = (await setup.socket.expect({ type: 'direct_open', user_id: bob0.userId }, 'thread')).thread.id;
      setup.socket.close();
      await setup.socket.closed;
      devices.a0.threads = [group, direct];
      devices.a1.threads = [group, direct];
      devices.b0.threads = [group, direct];
      devices.c0.threads = [group];
      const threadIds = [group, direct];

      const sent = new Map<string, Sent>();
      const seenLive = new Map<string, Live>();
      const connectAll = async (): Promise<Record<DeviceName, Connected>> =>
        Object.fromEntries(await Promise.all(names.map(async (name) => [name, await connectAuthenticated(server.wsUrl, devices[name].token)] as const))) as Record<
          DeviceName,
          Connected
        >;

      /** Every thread's full history, paged by seq. */
      const fetchHistory = async (socket: TestSocket): Promise<Map<number, Frame[]>> => {
        const history = new Map<number, Frame[]>();
        for (const threadId of threadIds) {
          const messages: Frame[] = [];
          for (let after = 0, more = true; more; ) {
            const page = await socket.expect({ type: 'history', thread_id: threadId, after, limit: 200 }, 'messages');
            messages.push(...page.messages);
            more = page.has_more_after;
            if (more) {
              assert.ok(page.messages.length > 0, 'has_more_after on an empty page');
              after = page.messages.at(-1).seq;
            }
          }
          history.set(threadId, messages);
        }
        return history;
      };

      /** What is stored: seqs 1..N, each message sent stored once, at the seq and id of its ack; nothing seen live lost. */
      const verifyHistory = (history: Map<number, Frame[]>, when: string): Map<string, Frame> => {
        for (const threadId of threadIds) {
          const messages = history.get(threadId) as Frame[];
          assert.deepEqual(
            messages.map((m) => m.seq),
            Array.from({ length: messages.length }, (_, i) => i + 1),
            `${when}: thread ${threadId}: seqs run 1..N without gaps or repeats`,
          );
          const sentHere = [...sent.values()].filter((m) => m.threadId === threadId).map((m) => `${devices[m.device].deviceId}:${m.clientMsgId}`);
          const storedHere = messages.filter((m) => m.kind !== 'system').map((m) => `${m.sender_device_id}:${m.client_msg_id}`);
          assert.deepEqual(storedHere.sort(), sentHere.sort(), `${when}: thread ${threadId}: every message sent is stored exactly once`);
          assert.deepEqual(
            messages.filter((m) => m.kind === 'system').map((m) => m.seq),
            threadId === group ? [1] : [],
            `${when}: thread ${threadId}: the only other message is group_created`,
          );
        }
        const stored = new Map<string, Frame>();
        for (const messages of history.values()) for (const m of messages) stored.set(key(m.thread_id, m.seq), m);
        for (const message of sent.values()) {
          const final = message.final as { seq: number; messageId: number };
          const m = stored.get(key(message.threadId, final.seq));
          assert.ok(m, `${when}: ${message.clientMsgId}: seq ${final.seq} is in history`);
          assert.deepEqual(
            { id: m.id, client_msg_id: m.client_msg_id, sender_device_id: m.sender_device_id, body: m.body },
            { id: final.messageId, client_msg_id: message.clientMsgId, sender_device_id: devices[message.device].deviceId, body: message.body },
            `${when}: ${message.clientMsgId}: history has it at the seq and id of its ack`,
          );
        }
        for (const [where, live] of seenLive) {
          assert.equal(stored.get(where)?.id, live.messageId, `${when}: message ${where} was delivered live before a kill and survived it`);
        }
        return stored;
      };

      /** An inbox holds every message of the device's threads from another device (up to a seq per thread), once each, in seq order per thread. */
      const verifyInbox = (name: DeviceName, inbox: Frame[], history: Map<number, Frame[]>, upTo: Map<number, number>, when: string): void => {
        const keys = inbox.map((frame) => key(frame.message.thread_id, frame.message.seq));
        assert.equal(new Set(keys).size, keys.length, `${name} ${when}: no (thread, seq) twice in the inbox`);
        const stored = new Map<string, Frame>();
        for (const messages of history.values()) for (const m of messages) stored.set(key(m.thread_id, m.seq), m);
        for (const frame of inbox) {
          assert.equal(frame.message.id, stored.get(key(frame.message.thread_id, frame.message.seq))?.id, `${name} ${when}: the inbox message is the stored one`);
        }
        for (const threadId of devices[name].threads) {
          const seqs = inbox.filter((frame) => frame.message.thread_id === threadId).map((frame) => frame.message.seq);
          assert.deepEqual(seqs, seqs.slice().sort((x, y) => x - y), `${name} ${when}: thread ${threadId} comes in seq order`);
        }
        const expected = devices[name].threads.flatMap((threadId) =>
          (history.get(threadId) as Frame[])
            .filter((m) => m.seq <= (upTo.get(threadId) as number) && m.sender_device_id !== devices[name].deviceId)
            .map((m) => key(m.thread_id, m.seq)),
        );
        assert.deepEqual(keys.sort(), expected.sort(), `${name} ${when}: the inbox holds every message from the other devices`);
      };

      let committedButUnacked = 0;
      let history = new Map<number, Frame[]>();
      for (let round = 1; round <= ROUNDS; round++) {
        // ---- concurrent senders; SIGKILL of the process group once KILL_AFTER_ACKS acks are in ----
        const senders: Array<{ device: DeviceName; conn: Connected }> = [];
        for (const name of names) {
          for (let c = 0; c < CONNECTIONS_PER_DEVICE; c++) senders.push({ device: name, conn: await connectAuthenticated(server.wsUrl, devices[name].token) });
        }
        for (const { conn } of senders) conn.socket.ws.on('error', () => {}); // the kill resets the sockets
        const errors: Frame[] = [];
        let acks = 0;
        let killed: Promise<number | null> | undefined;
        const victim = server;
        const worker = async (device: DeviceName, socket: TestSocket, label: string): Promise<void> => {
          const closed = socket.closed.then(() => null);
          for (let i = 0; socket.ws.readyState === WebSocket.OPEN; i++) {
            const threads = devices[device].threads;
            const threadId = threads[i % threads.length] as number;
            const clientMsgId = `${label}-${i}`;
            const message: Sent = { round, device, threadId, clientMsgId, body: { text: `${clientMsgId} says hi`, n: sent.size } };
            sent.set(`${device}:${clientMsgId}`, message);
            const reply = await Promise.race([socket.request({ type: 'send', thread_id: threadId, client_msg_id: clientMsgId, body: message.body }), closed]);
            if (reply === null) return;
            if (reply.type !== 'ack') {
              errors.push(reply);
              return;
            }
            message.ack = message.final = { seq: reply.seq, messageId: reply.message_id };
            if (++acks === KILL_AFTER_ACKS) killed = victim.stop('SIGKILL');
          }
        };
        await Promise.all(
          senders.flatMap(({ device, conn }, c) => Array.from({ length: WINDOW }, (_, w) => worker(device, conn.socket, `r${round}-${device}-c${c}-w${w}`))),
        );
        assert.deepEqual(errors, [], 'no send was refused');
        assert.ok(killed, 'the server was killed');
        assert.equal(await killed, null, 'the server died of the signal, with no exit code');
        assert.equal(victim.process.signalCode, 'SIGKILL');
        for (const { conn } of senders) {
          for (const frame of conn.socket.drain('message')) {
            const m = frame.message;
            const where = key(m.thread_id, m.seq);
            const earlier = seenLive.get(where);
            if (earlier) assert.equal(earlier.messageId, m.id, `two different messages were delivered live as ${where}`);
            seenLive.set(where, { messageId: m.id, clientMsgId: m.client_msg_id, senderDeviceId: m.sender_device_id });
          }
        }
        const thisRound = [...sent.values()].filter((m) => m.round === round);
        const acked = thisRound.filter((m) => m.ack);
        const unacked = thisRound.filter((m) => !m.ack);
        assert.ok(acked.length >= KILL_AFTER_ACKS);
        assert.ok(unacked.length > 0, 'sends were in flight at the kill');

        // ---- restart on the same data directory ----
        server = await startServer(args);
        const first = await connectAll();
        const listed = await first.a0.socket.expect({ type: 'threads' }, 'threads');
        const lastSeqAtRestart = new Map<number, number>(listed.threads.map((thread: Frame) => [thread.id, thread.last_seq]));
        assert.deepEqual([...lastSeqAtRestart.keys()].sort(), threadIds.slice().sort());
        const resend = (message: Sent): Promise<Frame> =>
          first[message.device].socket.request({ type: 'send', thread_id: message.threadId, client_msg_id: message.clientMsgId, body: message.body });

        // (a) each send that got no ack: committed before the kill (a duplicate, at the seq anyone saw live) or stored now.
        let duplicates = 0;
        await Promise.all(
          unacked.map(async (message) => {
            const reply = await resend(message);
            assert.equal(reply.type, 'ack', `resend of ${message.clientMsgId}: ${JSON.stringify(reply)}`);
            assert.deepEqual([reply.thread_id, reply.client_msg_id], [message.threadId, message.clientMsgId]);
            const restartSeq = lastSeqAtRestart.get(message.threadId) as number;
            const live = [...seenLive.entries()].find(
              ([where, m]) => where.startsWith(`${message.threadId}/`) && m.clientMsgId === message.clientMsgId && m.senderDeviceId === devices[message.device].deviceId,
            );
            if (reply.duplicate) {
              duplicates++;
              assert.ok(reply.seq <= restartSeq, `${message.clientMsgId} is a duplicate, so it was stored before the kill (seq ${reply.seq} <= ${restartSeq})`);
            } else {
              assert.ok(reply.seq > restartSeq, `${message.clientMsgId} is new, so it takes a seq after the restart (${reply.seq} > ${restartSeq})`);
              assert.equal(live, undefined, `${message.clientMsgId} was delivered live before the kill, yet its resend was stored again`);
            }
            if (live) assert.deepEqual([key(message.threadId, reply.seq), reply.message_id], [live[0], live[1].messageId], `${message.clientMsgId}: the seq and id delivered live`);
            message.final = { seq: reply.seq, messageId: reply.message_id };
          }),
        );
        committedButUnacked += duplicates;

        // (b) a sample of acked sends, the last of each worker (nearest the kill) included: the same ack again.
        const lastOfWorker = new Map<string, Sent>();
        for (const message of acked) lastOfWorker.set(message.clientMsgId.replace(/-\d+$/, ''), message);
        const sample = [...new Set([...acked.filter((_, i) => i % 7 === 0), ...lastOfWorker.values()])];
        await Promise.all(
          sample.map(async (message) => {
            const reply = await resend(message);
            assert.equal(reply.type, 'ack', `resend of ${message.clientMsgId}: ${JSON.stringify(reply)}`);
            assert.deepEqual(
              { seq: reply.seq, messageId: reply.message_id, duplicate: reply.duplicate },
              { ...message.ack, duplicate: true },
              `resending acked ${message.clientMsgId} gives the same ack`,
            );
          }),
        );

        // The stored truth, and the inboxes as they were right after the restart: everything stored before the kill.
        history = await fetchHistory(first.a0.socket);
        verifyHistory(history, `round ${round}`);
        for (const name of names) verifyInbox(name, first[name].inbox, history, lastSeqAtRestart, `after restart ${round}`);
        for (const name of names) first[name].socket.close();
        await Promise.all(names.map((name) => first[name].socket.closed));
        t.diagnostic(
          `round ${round}: ${thisRound.length} sent, ${acked.length} acked before the kill, ${unacked.length} in flight ` +
            `(${duplicates} of them committed before it), ${sample.length} acked ones resent`,
        );
      }
      const lastSeq = new Map(threadIds.map((id) => [id, (history.get(id) as Frame[]).length]));

      // ---- every device reconnects: its inbox has everything (nothing was acknowledged yet); sync; delivered ----
      for (const name of names) {
        const { socket, inbox, overflow } = await connectAuthenticated(server.wsUrl, devices[name].token);
        assert.equal(overflow, false);
        verifyInbox(name, inbox, history, lastSeq, 'on the final reconnect');
        // Its inbox plus what it sent itself (known from acks) leave no gap in any thread, and sync from there finds nothing missing.
        const has = new Set(inbox.map((frame) => key(frame.message.thread_id, frame.message.seq)));
        for (const message of sent.values()) if (message.device === name) has.add(key(message.threadId, message.final?.seq as number));
        if (name === 'a0') has.add(key(group, 1)); // its group_created
        const cursors = devices[name].threads.map((threadId) => {
          const seqs = Array.from({ length: lastSeq.get(threadId) as number }, (_, i) => i + 1);
          assert.deepEqual(
            seqs.filter((seq) => !has.has(key(threadId, seq))),
            [],
            `${name}: no gap in thread ${threadId}`,
          );
          return { thread_id: threadId, seq: seqs.length };
        });
        assert.deepEqual((await socket.expect({ type: 'sync', cursors }, 'sync')).threads, [], `${name}: sync with complete cursors finds nothing missing`);
        for (const threadId of devices[name].threads) {
          const reply = await socket.expect({ type: 'delivered', thread_id: threadId, seq: lastSeq.get(threadId) }, 'delivered');
          assert.equal(reply.seq, lastSeq.get(threadId));
        }
        socket.close();
        await socket.closed;
      }

      // ---- acknowledged means gone from the inbox, and the server's delivered cursors leave nothing to sync ----
      for (const name of names) {
        const { socket, inbox, overflow } = await connectAuthenticated(server.wsUrl, devices[name].token);
        assert.deepEqual([inbox.length, overflow], [0, false], `${name}: nothing left in the inbox once delivered`);
        assert.deepEqual((await socket.expect({ type: 'sync' }, 'sync')).threads, [], `${name}: sync by the server's cursors finds nothing`);
        socket.close();
        await socket.closed;
      }

      assert.equal(await server.stop(), 0, 'a clean stop at the end');
      const check = await runCli(['db', 'check', ...dbArgs]);
      assert.equal(check.code, 0, check.stdout + check.stderr);
      assert.match(check.stdout, /integrity: +ok/);
      t.diagnostic(
        `${sent.size} messages over ${ROUNDS} kills (group seq ${lastSeq.get(group)}, direct seq ${lastSeq.get(direct)}); ` +
          `${committedButUnacked} committed but unacked at a kill; ${Date.now() - started} ms`,
      );
    } finally {
      await server.stop('SIGKILL');
    }
  });
});
