import { type IncomingMessage, type RequestListener, type Server, type ServerResponse, createServer } from 'node:http';
import { type Server as HttpsServer, createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import { CloseCodes, StartupError } from '../../errors.js';
import { SERVED_METHODS, checkHead, toRequest } from '../http/incoming.js';
import { bodyTooLarge, internalError } from '../http/respond.js';
import { SERVER_ADDRESS_SETTINGS, whyNotListening } from '../listen-failure.js';
import { RequestAbortedError, isEventStream, streamedLength } from '../streaming.js';
import { type CertificateInfo, readTlsFiles } from '../tls.js';
import { type Connection, type ConnectionListener, ResponseCutError, type SendStatus, type TransportOptions, type TransportServer } from '../types.js';

/** Topic subscriptions, kept by hand: `ws` has no publish/subscribe of its own. */
class Topics {
  private readonly byTopic = new Map<string, Set<NodeConnection>>();

  add(topic: string, connection: NodeConnection): void {
    let members = this.byTopic.get(topic);
    if (!members) this.byTopic.set(topic, (members = new Set()));
    members.add(connection);
  }

  remove(topic: string, connection: NodeConnection): void {
    const members = this.byTopic.get(topic);
    if (!members) return;
    members.delete(connection);
    if (members.size === 0) this.byTopic.delete(topic);
  }

  publish(topic: string, text: string): void {
    for (const connection of this.byTopic.get(topic) ?? []) connection.send(text);
  }
}

/** How long a closing connection waits for the peer's close frame before the socket is cut. */
const CLOSE_HANDSHAKE_MS = 2_000;

class NodeConnection implements Connection {
  private closed = false;
  readonly topics = new Set<string>();

  constructor(
    private readonly ws: WebSocket,
    readonly remoteAddress: string,
    readonly forwardedFor: string | undefined,
    private readonly registry: Topics,
    private readonly maxBufferedBytes: number,
  ) {}

  send(text: string): SendStatus {
    // Like uWS with closeOnBackpressureLimit off: past the limit, frames are dropped.
    if (this.closed || this.ws.bufferedAmount > this.maxBufferedBytes) return 'dropped';
    this.ws.send(text);
    return this.ws.bufferedAmount > 0 ? 'buffered' : 'sent';
  }

  bufferedAmount(): number {
    return this.closed ? 0 : this.ws.bufferedAmount;
  }

  gather(work: () => void): void {
    work();
  }

  subscribe(topic: string): void {
    if (this.closed) return;
    this.topics.add(topic);
    this.registry.add(topic, this);
  }

  unsubscribe(topic: string): void {
    this.topics.delete(topic);
    this.registry.remove(topic, this);
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.close(code, reason);
    // ws waits 30 s for the peer's close frame. A client that never answers would keep the socket that
    // long after the limits counted it gone (uWS closes at once): give it a moment, then cut it.
    setTimeout(() => this.ws.terminate(), CLOSE_HANDSHAKE_MS).unref();
  }

  /** Leaves every topic; called once the socket has closed. */
  release(): void {
    this.closed = true;
    for (const topic of this.topics) this.registry.remove(topic, this);
    this.topics.clear();
  }
}

/** node:http + ws: for Node versions where the uWS native addon does not load. */
export function createNodeTransport(options: TransportOptions): TransportServer {
  const route = options.websocket;
  const topics = new Topics();
  const handle: RequestListener = (req, res) => void serveHttp(req, res, options);
  const tls = options.tls;
  let certificate: CertificateInfo | undefined;
  let secure: HttpsServer | undefined;
  if (tls) {
    const material = readTlsFiles(tls);
    certificate = material.info;
    secure = createHttpsServer({ cert: material.cert, key: material.key }, handle);
  }
  const server: Server = secure ?? createServer(handle);
  // Node's default requestTimeout (300 s for the whole request) would cut a long upload; bodies that are
  // not streamed are small (http.max_body_bytes) and keep a deadline of their own (serveHttp).
  server.requestTimeout = 0;
  const wss = new WebSocketServer({ noServer: true, maxPayload: route.maxPayloadBytes });

  // CONNECT (a proxy tunnel) never reaches the request handler: without this, Node drops the socket unanswered.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    const body = JSON.stringify({ error: { code: 'method_not_allowed', message: 'chatd does not serve CONNECT requests' } });
    const head = `HTTP/1.1 405 Method Not Allowed\r\nAllow: ${SERVED_METHODS.join(', ')}\r\nContent-Type: application/json; charset=utf-8`;
    answerRaw(socket, `${head}\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  });
  server.on('upgrade', (req, socket, head) => {
    const target = req.url ?? '/';
    if (!target.startsWith('/') || target.split('?')[0] !== route.path) {
      answerRaw(socket, 'HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => accept(ws, remoteAddress(req), req.headers['x-forwarded-for']?.toString()));
  });

  const accept = (ws: WebSocket, address: string, forwardedFor: string | undefined): void => {
    const connection = new NodeConnection(ws, address, forwardedFor, topics, route.maxBufferedBytes);
    // A listener that throws gets its connection closed with 1011, and the process carries on.
    const guard = (where: string, work: () => void): void => {
      try {
        work();
      } catch (error) {
        options.onError(error, where);
        connection.close(CloseCodes.internal_error.code, 'internal server error');
      }
    };
    let listener: ConnectionListener | undefined;
    guard('opening a WebSocket', () => {
      listener = route.accept(connection);
    });
    watchLiveness(ws, route.idleTimeoutSeconds);
    ws.on('message', (data, isBinary) => {
      if (!listener) return;
      const open = listener;
      guard('handling a WebSocket message', () => {
        if (isBinary) open.onBinary();
        else open.onMessage(data.toString());
      });
    });
    ws.on('close', (code, reason) => {
      connection.release();
      try {
        listener?.onClose(code, reason.toString());
      } catch (error) {
        options.onError(error, 'closing a WebSocket');
      }
    });
    ws.on('error', () => ws.terminate());
  };

  return {
    kind: 'node',
    listen: (host, port) =>
      new Promise((resolve, reject) => {
        const fail = (error: NodeJS.ErrnoException): void => {
          reject(new StartupError(`cannot listen on ${host}:${port}: ${whyNotListening(error.code ?? '', error.message, SERVER_ADDRESS_SETTINGS)}`));
        };
        server.once('error', fail);
        server.listen(port, host, () => {
          server.off('error', fail);
          resolve((server.address() as AddressInfo).port);
        });
      }),
    publish: (topic, text) => topics.publish(topic, text),
    stopListening: () => {
      server.close();
    },
    close: async () => {
      for (const ws of wss.clients) ws.terminate();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    certificate: () => certificate,
    reloadTls: () => {
      if (!tls || !secure) throw new StartupError('TLS is off (tls.cert and tls.key are empty): there is no certificate to reload');
      const material = readTlsFiles(tls);
      // New handshakes use the new context; the listening socket and open connections are untouched.
      secure.setSecureContext({ cert: material.cert, key: material.key });
      certificate = material.info;
      return material.info;
    },
  };
}

/** WebSocket pings every half idle timeout; a peer that answers none in a whole timeout is dropped (as uWS does). */
function watchLiveness(ws: WebSocket, idleTimeoutSeconds: number): void {
  let answered = true;
  ws.on('pong', () => {
    answered = true;
  });
  const timer = setInterval(() => {
    if (!answered) {
      ws.terminate();
      return;
    }
    answered = false;
    ws.ping();
  }, (idleTimeoutSeconds * 1000) / 2);
  timer.unref();
  ws.on('close', () => clearInterval(timer));
}

/** Reads the request, runs the handler, writes its Response. Nothing a request carries or a handler throws escapes. */
/** A streamed request body that brings nothing for this long is cut (uWS's HTTP idle timeout is 10 s). */
const BODY_IDLE_MS = 30_000;
/** What Node's requestTimeout gave every request, kept for bodies that are read whole. */
const SMALL_BODY_DEADLINE_MS = 300_000;

async function serveHttp(req: IncomingMessage, res: ServerResponse, options: TransportOptions): Promise<void> {
  const method = req.method ?? 'GET';
  const head = { method, target: req.url ?? '/', headers: headerPairs(req.rawHeaders) };
  try {
    const refused = checkHead(head);
    if (refused) {
      await write(req, res, refused, method);
      return;
    }
    let body: Buffer | ReadableStream<Uint8Array> | undefined;
    if (method !== 'GET' && method !== 'HEAD' && options.streamsBody?.(method, head.target)) {
      // A streamed body (an upload) may take as long as the client's line needs: Node's whole-request
      // deadline is off for it (see createNodeTransport), and a body that stops arriving is cut after
      // BODY_IDLE_MS instead, so a stalled client holds no file open for long.
      body = bodyStream(req);
    } else if (method !== 'GET' && method !== 'HEAD') {
      const deadline = setTimeout(() => req.destroy(), SMALL_BODY_DEADLINE_MS);
      const chunks: Buffer[] = [];
      let size = 0;
      let tooLarge = Number(req.headers['content-length'] ?? 0) > options.maxBodyBytes;
      try {
        if (!tooLarge) {
          for await (const chunk of req) {
            size += (chunk as Buffer).length;
            if (size > options.maxBodyBytes) {
              tooLarge = true;
              break;
            }
            chunks.push(chunk as Buffer);
          }
        }
      } finally {
        // Also when the client left mid-body: the timer would hold the request for its whole deadline.
        clearTimeout(deadline);
      }
      if (tooLarge) {
        await write(req, res, bodyTooLarge(options.maxBodyBytes), method);
        req.destroy();
        return;
      }
      body = Buffer.concat(chunks);
    }
    const incoming = toRequest(head, body);
    await write(req, res, incoming.ok ? await options.http(incoming.request, { remoteAddress: remoteAddress(req) }) : incoming.response, method);
  } catch (error) {
    // A cut event stream (pipeResponse destroyed its socket): on purpose, nothing to report.
    if (error instanceof ResponseCutError) return;
    options.onError(error, `${method} ${head.target}`);
    if (!res.headersSent) await write(req, res, internalError(), method).catch(() => res.destroy());
    else res.destroy();
  }
}

/**
 * The request body as the handler reads it: each read pulls from the IncomingMessage, which stops
 * reading the socket while its own small buffer is full. A client gone mid-body errors it with
 * RequestAbortedError. The message's iterator is made at the first read, so a body nobody reads
 * has no 'error' listener and an abort stays silent (Node emits 'error' only to listeners).
 */
function bodyStream(req: IncomingMessage): ReadableStream<Uint8Array> {
  let chunks: AsyncIterator<Buffer> | undefined;
  return new ReadableStream<Uint8Array>({
    pull: async (controller) => {
      chunks ??= req[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      let next: IteratorResult<Buffer>;
      // Only while the handler waits for the client: a handler busy with what it read is not idle time.
      const idle = setTimeout(() => req.destroy(), BODY_IDLE_MS);
      try {
        next = await chunks.next();
      } catch {
        controller.error(new RequestAbortedError());
        return;
      } finally {
        clearTimeout(idle);
      }
      if (next.done) {
        // The iterator also ends quietly when the message was destroyed: only a complete one is a whole body.
        if (req.complete) controller.close();
        else controller.error(new RequestAbortedError());
      } else controller.enqueue(new Uint8Array(next.value.buffer, next.value.byteOffset, next.value.byteLength));
    },
    // The handler wants no more of it. Nothing to do: destroying the message would cut the socket before
    // the answer; unread, it stops the socket, and the answer closes the connection (write).
  });
}

/**
 * Writes a whole HTTP answer on a socket Node has handed over (CONNECT, upgrade) and closes it.
 * Node removed its own error listener before handing it over: without one, a client's reset
 * (ECONNRESET) would be an uncaught error that ends the process.
 */
function answerRaw(socket: Duplex, text: string): void {
  socket.on('error', () => socket.destroy());
  socket.end(text, () => socket.destroy());
}

function* headerPairs(raw: readonly string[]): Generator<[string, string]> {
  for (let i = 0; i + 1 < raw.length; i += 2) yield [raw[i] as string, raw[i + 1] as string];
}

/**
 * Writes the handler's Response. One with a body and a Content-Length, or an event stream (chunked,
 * no length), is copied from its stream only as fast as the socket takes it ('drain'), and cancelled
 * when the client goes away; any other is read whole, then sent. HEAD gets the headers only.
 */
async function write(req: IncomingMessage, res: ServerResponse, response: Response, method: string): Promise<void> {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, key) => {
    headers[key] = value;
  });
  // Answered before the whole request body arrived (a refusal): close, rather than read the rest of it.
  if (!req.complete) headers.connection = 'close';
  if (isEventStream(response) && method !== 'HEAD') {
    // No length: chunked, each chunk flushed as it comes (Node writes at once; nothing waits to fill a buffer).
    delete headers['content-length'];
    res.writeHead(response.status, headers);
    await pipeResponse(res, response.body as ReadableStream<Uint8Array>);
    return;
  }
  const length = streamedLength(response);
  if (length === undefined || method === 'HEAD') {
    const body = method === 'HEAD' ? undefined : Buffer.from(await response.arrayBuffer());
    if (method === 'HEAD') await response.body?.cancel();
    res.writeHead(response.status, headers);
    res.end(body);
    return;
  }
  // A stream that ends short of its Content-Length must cut the connection, not end the response
  // "successfully" and leave the next response on this keep-alive socket misframed.
  res.strictContentLength = true;
  res.writeHead(response.status, headers);
  await pipeResponse(res, response.body as ReadableStream<Uint8Array>);
}

/**
 * A client that stops reading a streamed response is cut once the socket has taken nothing for this
 * long (uWS's HTTP idle timeout does the same): otherwise each such download would hold its file open
 * for ever. A slow client still reading is not cut: what counts is progress, not the time to drain a chunk.
 */
const RESPONSE_STALL_MS = 10_000;

/** Destroys the response when its socket's send buffer has not shrunk over a whole RESPONSE_STALL_MS. */
function stallWatch(res: ServerResponse): NodeJS.Timeout {
  let pending = res.socket?.writableLength ?? 0;
  return setInterval(() => {
    const now = res.socket?.writableLength ?? 0;
    if (now >= pending) res.destroy();
    pending = now;
  }, RESPONSE_STALL_MS);
}

async function pipeResponse(res: ServerResponse, body: ReadableStream<Uint8Array>): Promise<void> {
  const reader = body.getReader();
  // Before end(), 'close' means the client is gone.
  let closed = false;
  let wake: (() => void) | undefined;
  const onDrain = (): void => wake?.();
  const onClose = (): void => {
    closed = true;
    wake?.();
    // An event stream may wait long for its next chunk: cancelling now ends that read (and tells the producer).
    if (!res.writableFinished) reader.cancel().catch(() => {});
  };
  res.on('drain', onDrain).on('close', onClose);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (value.byteLength === 0) continue;
      if (closed || res.destroyed) {
        await reader.cancel();
        return;
      }
      // Past the declared length, Node throws (ERR_HTTP_CONTENT_LENGTH_MISMATCH): the catch cuts the socket.
      if (!res.write(value) && !closed) {
        const stalled = stallWatch(res);
        await new Promise<void>((resolve) => (wake = resolve));
        clearInterval(stalled);
      }
      wake = undefined;
    }
    if (closed) return;
    res.end();
  } catch (error) {
    res.destroy();
    await reader.cancel().catch(() => {});
    throw error;
  } finally {
    res.off('drain', onDrain).off('close', onClose);
  }
}

function remoteAddress(req: IncomingMessage): string {
  return (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
}
