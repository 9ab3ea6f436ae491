/**
 * The relay floor: what a message costs a server that does chatd's network
 * work and nothing else. A bare uWebSockets.js server speaking the part of
 * chatd's protocol the direct pairs use (auth, send, delivered), with chatd's
 * I/O pattern: each frame parsed as JSON, the answers of a turn written after
 * its reads (as chatd publishes after its commit, so that uWS writes each
 * socket's frames of the turn together), an ack to the sender and the message
 * to the thread's other device. No storage, no services: at a fixed rate its
 * cost per message is the floor of socket reads, writes and event-loop turns
 * that no commit policy can take away. Run pinned like chatd; prints
 * {"port": N} when listening.
 *
 * Tokens are `s:<n>` (the sender of thread n) and `r:<n>` (its receiver):
 * see relayPairs in bench/scenarios/relay-floor.ts.
 */
import type { WebSocket } from 'uWebSockets.js';
import { loadNativeUws } from '../../src/transport/uws/load.js';

interface Device {
  thread: number;
  side: 's' | 'r';
  /** uWS throws on a send to a closed socket: frames queued for it in the turn are dropped (as chatd's connection does). */
  closed?: boolean;
}

const loaded = loadNativeUws();
if (!loaded.ok) {
  console.error(loaded.reason);
  process.exit(1);
}
const app = loaded.uws.App();
const receivers = new Map<number, WebSocket<Device>>();
const seqs = new Map<number, number>();
let queued: Array<[WebSocket<Device>, Device, string]> = [];
const writeQueued = (): void => {
  const frames = queued;
  queued = [];
  for (const [ws, device, text] of frames) if (!device.closed) ws.send(text, false);
};
const answer = (ws: WebSocket<Device>, text: string): void => {
  // The socket's data is read now: a closed uWS socket throws on every method, getUserData too.
  queued.push([ws, ws.getUserData(), text]);
  if (queued.length === 1) setImmediate(writeQueued);
};

app.ws<Device>('/*', {
  maxPayloadLength: 1 << 20,
  maxBackpressure: 256 << 20,
  message: (ws, data) => {
    const frame = JSON.parse(Buffer.from(data).toString()) as { type: string; id?: string; token?: string; thread_id?: number; seq?: number; body?: unknown; client_msg_id?: string };
    const device = ws.getUserData();
    switch (frame.type) {
      case 'auth': {
        const [side, thread] = String(frame.token).split(':') as ['s' | 'r', string];
        device.side = side;
        device.thread = Number(thread);
        if (side === 'r') receivers.set(device.thread, ws);
        ws.send(JSON.stringify({ type: 'inbox_done', id: frame.id }), false);
        return;
      }
      case 'send': {
        const threadId = device.thread;
        const seq = (seqs.get(threadId) ?? 0) + 1;
        seqs.set(threadId, seq);
        const message = { id: seq, thread_id: threadId, seq, sender_user_id: 1, sender_device_id: 1, client_msg_id: frame.client_msg_id, body: frame.body, created_at: Date.now() };
        answer(ws, JSON.stringify({ type: 'ack', id: frame.id, message_id: seq, seq, created_at: message.created_at }));
        const receiver = receivers.get(threadId);
        if (receiver) answer(receiver, JSON.stringify({ type: 'message', message }));
        return;
      }
      case 'delivered':
        answer(ws, JSON.stringify({ type: 'delivered', id: frame.id, thread_id: frame.thread_id, seq: frame.seq }));
        return;
      default:
        ws.send(JSON.stringify({ type: 'error', id: frame.id, code: 'unknown_type' }), false);
    }
  },
  close: (ws) => {
    const device = ws.getUserData();
    device.closed = true;
    if (device.side === 'r' && receivers.get(device.thread) === ws) receivers.delete(device.thread);
  },
});
app.listen('127.0.0.1', 0, (socket) => {
  if (!socket) process.exit(1);
  console.log(JSON.stringify({ port: loaded.uws.us_socket_local_port(socket) }));
});
