/**
 * The transport's share of an upload, without chatd's tus handler: the real
 * transport (argv[2]: uws or node) with one streamed route, POST /upload, whose
 * handler writes the request body to a file in argv[3] as it reads it (fs
 * stream, backpressure kept) and fsyncs it before answering {"bytes": N}.
 * Prints {"port": N} when listening.
 */
import { createWriteStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { join } from 'node:path';
import { createNodeTransport } from '../../src/transport/node/server.js';
import { loadNativeUws } from '../../src/transport/uws/load.js';
import { createUwsTransport } from '../../src/transport/uws/server.js';
import type { TransportOptions } from '../../src/transport/types.js';

const kind = process.argv[2] === 'node' ? 'node' : 'uws';
const dir = process.argv[3] as string;
let uploads = 0;

/** fsync through a second descriptor (as bench/scenarios/upload.ts explains). */
async function fsyncFile(path: string): Promise<void> {
  const file = await open(path, 'r+');
  try {
    await file.sync();
  } finally {
    await file.close();
  }
}

const options: TransportOptions = {
  http: async (request) => {
    if (request.method !== 'POST' || new URL(request.url).pathname !== '/upload') return new Response('no such path', { status: 404 });
    const path = join(dir, `upload-${++uploads}`);
    let bytes = 0;
    // A plain loop with 'drain': readable.pipeTo(Writable.toWeb(fs stream)) held the whole body in
    // memory on Node 20.20 (RSS grew by the upload's size), and ran at a third of the speed.
    const file = createWriteStream(path);
    for await (const chunk of request.body as ReadableStream<Uint8Array>) {
      bytes += chunk.byteLength;
      if (!file.write(chunk)) await once(file, 'drain');
    }
    file.end();
    await once(file, 'close');
    await fsyncFile(path);
    await rm(path);
    return new Response(JSON.stringify({ bytes }), { headers: { 'content-type': 'application/json' } });
  },
  streamsBody: (method, path) => method === 'POST' && path.startsWith('/upload'),
  maxBodyBytes: 1024 * 1024,
  onError: (error, where) => console.error(where, error),
  websocket: {
    path: '/v1/ws',
    maxPayloadBytes: 64 * 1024,
    maxBufferedBytes: 1024 * 1024,
    idleTimeoutSeconds: 60,
    accept: () => {
      throw new Error('no WebSockets here');
    },
  },
};

let server;
if (kind === 'uws') {
  const loaded = loadNativeUws();
  if (!loaded.ok) {
    console.error(loaded.reason);
    process.exit(1);
  }
  server = createUwsTransport(loaded.uws, options);
} else {
  server = createNodeTransport(options);
}
const port = await server.listen('127.0.0.1', 0);
console.log(JSON.stringify({ port }));
