/**
 * The uWS ceiling: a bare uWebSockets.js server with no chat logic, run pinned
 * like chatd. `echo` sends every message back; `publish` subscribes every socket
 * to one topic and publishes every message to it, as chatd does. Prints {"port": N} when listening.
 */
import { loadNativeUws } from '../../src/transport/uws/load.js';

const mode = process.argv[2] === 'publish' ? 'publish' : 'echo';
const loaded = loadNativeUws();
if (!loaded.ok) {
  console.error(loaded.reason);
  process.exit(1);
}
const app = loaded.uws.App();
let queued: ArrayBuffer[] = [];
const publishQueued = (): void => {
  const messages = queued;
  queued = [];
  for (const message of messages) app.publish('all', message, false);
};
app.ws('/*', {
  maxPayloadLength: 1 << 20,
  maxBackpressure: 256 << 20,
  open: (ws) => {
    if (mode === 'publish') ws.subscribe('all');
  },
  message: (ws, message, isBinary) => {
    if (mode === 'echo') {
      ws.send(message, isBinary);
      return;
    }
    // Published after the turn's reads, as chatd publishes after its commit: uWS then writes each
    // subscriber's frames of the turn together. (The message is valid only inside this callback.)
    queued.push(message.slice(0));
    if (queued.length === 1) setImmediate(publishQueued);
  },
});
app.listen('127.0.0.1', 0, (socket) => {
  if (!socket) process.exit(1);
  console.log(JSON.stringify({ port: loaded.uws.us_socket_local_port(socket) }));
});
