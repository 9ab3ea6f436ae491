import { STATUS_CODES } from 'node:http';
import type { HttpRequest, HttpResponse, TemplatedApp, WebSocket, us_listen_socket } from 'uWebSockets.js';
import { CloseCodes, StartupError } from '../../errors.js';
import { checkHead, toRequest } from '../http/incoming.js';
import { bodyTooLarge, internalError } from '../http/respond.js';
import { REQUEST_QUEUE_BYTES, RequestAbortedError, streamedLength } from '../streaming.js';
import { ListenerLostError, readTlsFiles } from '../tls.js';
import type { Connection, ConnectionListener, SendStatus, TransportOptions, TransportServer } from '../types.js';
import type { UwsModule } from './load.js';

/** Per-socket data, set at upgrade and completed at open. */
interface SocketData {
  readonly remoteAddress: string;
  readonly forwardedFor: string | undefined;
  connection?: UwsConnection;
  listener?: ConnectionListener;
}

const decoder = new TextDecoder();

/** Numbers each connection's own topic. */
let connectionCount = 0;

class UwsConnection implements Connection {
  private closed = false;
  /** Set while gather() runs: sends go through the connection's own topic. */
  private gathering = false;
  /** Subscribed at the first gather(): an idle connection (about 0.5 KB less) never needs it. */
  private ownTopic: string | undefined;

  constructor(
    private readonly ws: WebSocket<SocketData>,
    readonly remoteAddress: string,
    readonly forwardedFor: string | undefined,
    private readonly app: TemplatedApp,
  ) {}

  send(text: string): SendStatus {
    if (this.closed) return 'dropped';
    if (this.gathering && this.ownTopic) {
      this.app.publish(this.ownTopic, text, false);
      return 'sent';
    }
    const result = this.ws.send(text, false);
    return result === 1 ? 'sent' : result === 0 ? 'buffered' : 'dropped';
  }

  bufferedAmount(): number {
    return this.closed ? 0 : this.ws.getBufferedAmount();
  }

  gather(work: () => void): void {
    // Outside uWS's own callbacks (after a commit) every ws.send is a write syscall of its own, and
    // ws.cork gathers only one socket's frames. Published frames wait in uWS's topic tree, which
    // writes each socket's frames of one event-loop iteration together, in publish order across
    // topics: so the acks of a whole group commit and their fanout leave in one write per socket.
    if (this.closed) {
      work();
      return;
    }
    if (!this.ownTopic) {
      this.ownTopic = `c:${++connectionCount}`;
      this.ws.subscribe(this.ownTopic);
    }
    this.gathering = true;
    try {
      work();
    } finally {
      this.gathering = false;
    }
  }

  subscribe(topic: string): void {
    if (!this.closed) this.ws.subscribe(topic);
  }

  unsubscribe(topic: string): void {
    if (!this.closed) this.ws.unsubscribe(topic);
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.end(code, reason);
  }

  /** uWS forbids any use of a socket after its close event. */
  markClosed(): void {
    this.closed = true;
  }
}

type UwsApp = TemplatedApp & { close?: () => void };

/**
 * The fast path: uWebSockets.js, whose topics fan a published frame out in C++.
 *
 * With TLS, a reloaded certificate needs a new app: uWS cannot change the
 * certificate of an SSLApp, and its per-name certificates (addServerName) are
 * unsafe to replace — removeServerName frees the routes that keep-alive
 * connections under that name still use, and the next request on one of them
 * ends the process. So a reload builds an SSLApp with the new files, closes
 * the old listening socket and listens with the new app on the same address in
 * the same event-loop turn. Connections the kernel had queued and not yet
 * handed over are refused in that instant (their clients reconnect); open
 * connections stay on the app that accepted them, and publish reaches every
 * app. With port 0 there is no reload: the kernel refuses to bind the chosen
 * port again while connections accepted on it are open.
 */
export function createUwsTransport(uws: UwsModule, options: TransportOptions): TransportServer {
  const route = options.websocket;
  const tls = options.tls;
  let certificate = tls ? readTlsFiles(tls).info : undefined;
  /** Every app made so far, the listening one last; older ones keep the connections they accepted. */
  const apps: UwsApp[] = [];
  let listening: { readonly host: string; readonly port: number; readonly requested: number; socket: us_listen_socket } | undefined;

  /** A listener that throws gets its connection closed with 1011, and the process carries on. */
  const guard = (connection: UwsConnection, where: string, work: () => void): void => {
    try {
      work();
    } catch (error) {
      options.onError(error, where);
      connection.close(CloseCodes.internal_error.code, 'internal server error');
    }
  };

  const makeApp = (): UwsApp => {
    let app: UwsApp;
    try {
      app = tls ? uws.SSLApp({ cert_file_name: tls.certFile, key_file_name: tls.keyFile }) : uws.App();
    } catch (error) {
      throw new StartupError(`uWebSockets.js could not use ${tls?.certFile} and ${tls?.keyFile}: ${(error as Error).message}`);
    }
    app.ws<SocketData>(route.path, {
      maxPayloadLength: route.maxPayloadBytes,
      maxBackpressure: route.maxBufferedBytes,
      idleTimeout: route.idleTimeoutSeconds,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => {
        res.upgrade<SocketData>(
          { remoteAddress: remoteAddress(res), forwardedFor: req.getHeader('x-forwarded-for') || undefined },
          req.getHeader('sec-websocket-key'),
          req.getHeader('sec-websocket-protocol'),
          req.getHeader('sec-websocket-extensions'),
          context,
        );
      },
      open: (ws) => {
        const data = ws.getUserData();
        data.connection = new UwsConnection(ws, data.remoteAddress, data.forwardedFor, app);
        const connection = data.connection;
        guard(connection, 'opening a WebSocket', () => {
          data.listener = route.accept(connection);
        });
      },
      message: (ws, message, isBinary) => {
        const { connection, listener } = ws.getUserData();
        if (!connection || !listener) return;
        guard(connection, 'handling a WebSocket message', () => {
          if (isBinary) listener.onBinary();
          else listener.onMessage(decoder.decode(message));
        });
      },
      drain: (ws) => {
        const { connection, listener } = ws.getUserData();
        if (connection && listener) guard(connection, 'draining a WebSocket', () => listener.onDrain());
      },
      close: (ws, code, message) => {
        const data = ws.getUserData();
        data.connection?.markClosed();
        try {
          data.listener?.onClose(code, decoder.decode(message));
        } catch (error) {
          options.onError(error, 'closing a WebSocket');
        }
      },
    });
    app.any('/*', (res, req) => serveHttp(res, req, options));
    apps.push(app);
    return app;
  };

  /**
   * uWS calls back before listen() returns: the socket, or false when the address cannot be bound.
   * The one place that binds, for the first listen and for a reload alike. Closing before binding
   * again also works with LIBUS_LISTEN_EXCLUSIVE_PORT (tried: SO_REUSEADDR is still set, so open
   * connections on the port do not block the new bind); binding first would not.
   */
  const bind = (app: UwsApp, host: string, port: number): us_listen_socket | false => {
    // Exclusive: without it uWS sets SO_REUSEPORT, and a second chatd on a busy port would start
    // silently and share the clients with the first. The binary takes (host, port, options, callback)
    // and exports the option's value (1, ListenOptions in the typings); the typings know neither.
    const exclusive = (uws as UwsModule & { LIBUS_LISTEN_EXCLUSIVE_PORT?: number }).LIBUS_LISTEN_EXCLUSIVE_PORT ?? 1;
    const listenExclusive = app.listen as unknown as (
      host: string,
      port: number,
      options: number,
      callback: (socket: us_listen_socket | false) => void,
    ) => TemplatedApp;
    let bound: us_listen_socket | false = false;
    listenExclusive.call(app, host, port, exclusive, (socket) => {
      bound = socket;
    });
    return bound;
  };

  let current = makeApp();

  return {
    kind: 'uws',
    listen: (host, port) =>
      new Promise((resolve, reject) => {
        const socket = bind(current, host, port);
        if (!socket) {
          reject(new StartupError(`cannot listen on ${host}:${port}: the port is in use, or the address is not one of this machine's`));
          return;
        }
        const bound = uws.us_socket_local_port(socket);
        listening = { host, port: bound, requested: port, socket };
        resolve(bound);
      }),
    publish: (topic, text) => {
      for (const app of apps) app.publish(topic, text, false);
    },
    stopListening: () => {
      if (listening) uws.us_listen_socket_close(listening.socket);
      listening = undefined;
    },
    close: async () => {
      if (listening) uws.us_listen_socket_close(listening.socket);
      listening = undefined;
      // Not in the typings, but in the binary: closes every socket, keep-alive ones included.
      for (const app of apps) app.close?.();
    },
    certificate: () => certificate,
    reloadTls: () => {
      if (!tls) throw new StartupError('TLS is off (tls.cert and tls.key are empty): there is no certificate to reload');
      // Checked before the old socket is closed: a port the kernel chose cannot be bound again while
      // connections are open, and the old app could not have it back either.
      if (listening?.requested === 0) throw new StartupError('on the uws transport a TLS certificate can be reloaded only with a fixed server.port, not 0');
      const info = readTlsFiles(tls).info;
      const next = makeApp();
      if (listening) {
        const { host, port } = listening;
        uws.us_listen_socket_close(listening.socket);
        const socket = bind(next, host, port);
        if (!socket) {
          apps.pop();
          const again = bind(current, host, port);
          if (!again) {
            listening = undefined;
            throw new ListenerLostError(`lost ${host}:${port} while changing the TLS certificate: the address could not be bound again`);
          }
          listening.socket = again;
          throw new StartupError(`cannot listen on ${host}:${port} with the new certificate; still serving the previous one`);
        }
        listening.socket = socket;
      }
      current = next;
      certificate = info;
      return info;
    },
  };
}

/**
 * Reads a request (synchronously, as uWS requires), runs the handler, writes the Response unless the client left.
 * Nothing that a request carries or a handler throws escapes: uWS would end the process.
 */
function serveHttp(res: HttpResponse, req: HttpRequest, options: TransportOptions): void {
  const state: Exchange = { aborted: false, answered: false, finished: false, bodyDone: false, onAbort: [], onAnswer: [] };
  res.onAborted(() => {
    state.aborted = true;
    for (const react of state.onAbort) react();
  });
  const method = req.getCaseSensitiveMethod().toUpperCase();
  const write = (response: Response): void => respond(res, state, response, method, options);

  try {
    const query = req.getQuery();
    const headers: Array<[string, string]> = [];
    req.forEach((key, value) => headers.push([key, value]));
    const head = { method, target: `${req.getUrl()}${query ? `?${query}` : ''}`, headers };
    const context = { remoteAddress: remoteAddress(res) };
    const run = (body: Buffer | ReadableStream<Uint8Array> | undefined): void => {
      const incoming = toRequest(head, body);
      if (!incoming.ok) {
        write(incoming.response);
        return;
      }
      // A handler that throws before its first await throws here, not in a promise.
      new Promise<Response>((resolve) => resolve(options.http(incoming.request, context)))
        .then(write)
        .catch((error: unknown) => {
          options.onError(error, `${method} ${head.target}`);
          write(internalError());
        });
    };

    const refused = checkHead(head);
    if (refused) {
      write(refused);
      return;
    }
    if (method === 'GET' || method === 'HEAD') {
      state.bodyDone = true;
      run(undefined);
      return;
    }
    if (options.streamsBody?.(method, req.getUrl())) {
      run(bodyStream(res, state));
      return;
    }
    const declared = Number(headers.find(([key]) => key === 'content-length')?.[1] ?? 0);
    if (declared > options.maxBodyBytes) {
      write(bodyTooLarge(options.maxBodyBytes));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    res.onData((chunk, isLast) => {
      if (state.answered) return;
      size += chunk.byteLength;
      if (size > options.maxBodyBytes) {
        write(bodyTooLarge(options.maxBodyBytes));
        return;
      }
      // The chunk's memory is reused once this callback returns: copy it.
      chunks.push(Buffer.from(chunk.slice(0)));
      if (!isLast) return;
      state.bodyDone = true;
      try {
        run(Buffer.concat(chunks));
      } catch (error) {
        options.onError(error, `${method} request`);
        write(internalError());
      }
    });
  } catch (error) {
    options.onError(error, `${method} request`);
    write(internalError());
  }
}

/** One request's life, shared by the reading and the writing side. */
interface Exchange {
  /** uWS said the client is gone: the HttpResponse must not be touched again. */
  aborted: boolean;
  /** A Response is being written: no other may start. */
  answered: boolean;
  /** The answer is wholly handed to uWS (end/tryEnd succeeded): the HttpResponse must not be touched again. */
  finished: boolean;
  /** The whole request body has arrived (or there is none). */
  bodyDone: boolean;
  /** Run once, when uWS reports the abort. */
  readonly onAbort: Array<() => void>;
  /** Run once, just before the answer's first write. */
  readonly onAnswer: Array<() => void>;
}

/**
 * The request body as a stream the handler reads: uWS's chunks are copied (it reuses their memory)
 * and queued here; past REQUEST_QUEUE_BYTES the socket is paused, and resumed as the handler reads.
 * An abort ends the stream with RequestAbortedError, but only after the handler has read what had
 * arrived: a tus PATCH cut mid-body keeps every byte that reached the server (the client resumes
 * from there). The queue is ours, not the stream's, because a web stream's error() drops what it
 * still holds.
 */
function bodyStream(res: HttpResponse, state: Exchange): ReadableStream<Uint8Array> {
  const queue: Uint8Array[] = [];
  let queuedBytes = 0;
  let paused = false;
  let ended = false;
  let failure: Error | undefined;
  /** The pull waiting for the next chunk, end or failure. */
  let wake: (() => void) | undefined;
  const live = (): boolean => !state.aborted && !state.finished;
  const notify = (): void => {
    const waiting = wake;
    wake = undefined;
    waiting?.();
  };
  const resumeIfDrained = (): void => {
    if (paused && queuedBytes < REQUEST_QUEUE_BYTES && live()) {
      paused = false;
      res.resume();
    }
  };
  const stream = new ReadableStream<Uint8Array>(
    {
      pull: async (controller) => {
        while (queue.length === 0 && !ended && failure === undefined) await new Promise<void>((resolve) => (wake = resolve));
        const chunk = queue.shift();
        if (chunk !== undefined) {
          queuedBytes -= chunk.byteLength;
          controller.enqueue(chunk);
          resumeIfDrained();
          return;
        }
        if (failure !== undefined) controller.error(failure);
        else controller.close();
      },
      cancel: () => {
        // The handler wants no more: let the rest flow (and be dropped) rather than stall the socket.
        // Its answer closes the connection, the body being unfinished (respond).
        ended = true;
        queue.length = 0;
        queuedBytes = 0;
        if (paused && live()) {
          paused = false;
          res.resume();
        }
      },
    },
    { highWaterMark: 0 },
  );
  const fail = (): void => {
    if (ended || failure !== undefined) return;
    failure = new RequestAbortedError();
    notify();
  };
  state.onAbort.push(fail);
  // Answered before the whole body came: the rest is read and dropped (a paused socket would stall
  // the connection); the stream ends short, as the handler no longer reads it.
  state.onAnswer.push(() => {
    fail();
    if (paused) {
      paused = false;
      res.resume();
    }
  });
  res.onData((chunk, isLast) => {
    if (isLast) state.bodyDone = true;
    if (ended || failure !== undefined) return;
    // The chunk's memory is reused once this callback returns: copy it.
    if (chunk.byteLength > 0) {
      queue.push(new Uint8Array(chunk.slice(0)));
      queuedBytes += chunk.byteLength;
    }
    if (isLast) ended = true;
    notify();
    if (!ended && !paused && queuedBytes >= REQUEST_QUEUE_BYTES && live()) {
      paused = true;
      res.pause();
    }
  });
  return stream;
}

/**
 * Writes a Response once, unless the client left. One with a body and a Content-Length is sent with
 * tryEnd as its stream yields, waiting for onWritable under backpressure, its stream cancelled on abort;
 * any other is read whole, then ended in one corked write. HEAD gets the headers only.
 */
function respond(res: HttpResponse, state: Exchange, response: Response, method: string, options: TransportOptions): void {
  if (state.answered) {
    void response.body?.cancel().catch(() => {});
    return;
  }
  state.answered = true;
  const length = streamedLength(response);
  const headOnly = method === 'HEAD' && length !== undefined;
  // HEAD of a streamed response: its body is not read at all.
  const sending: Promise<{ body: ArrayBuffer | undefined }> = headOnly
    ? (response.body as ReadableStream<Uint8Array>).cancel().then(() => ({ body: undefined }))
    : length === undefined
      ? response.arrayBuffer().then((body) => ({ body }))
      : Promise.resolve({ body: undefined });
  sending
    .then(async ({ body }) => {
      if (state.aborted) {
        if (length !== undefined && !headOnly) await response.body?.cancel();
        return;
      }
      for (const react of state.onAnswer) react();
      // A refusal before the whole request body came: close, rather than read the rest of it.
      const close = response.headers.get('connection') === 'close' || !state.bodyDone;
      const writeHead = (): void => {
        res.writeStatus(`${response.status} ${STATUS_CODES[response.status] ?? ''}`);
        response.headers.forEach((value, key) => {
          if (key !== 'content-length' && !(close && key === 'connection')) res.writeHeader(key, value);
        });
      };
      if (headOnly) {
        res.cork(() => {
          writeHead();
          res.endWithoutBody(length, close);
        });
        state.finished = true;
      } else if (length === undefined) {
        res.cork(() => {
          writeHead();
          res.end(method === 'HEAD' ? undefined : body, close);
        });
        state.finished = true;
      } else {
        await pipeResponse(res, state, response.body as ReadableStream<Uint8Array>, length, writeHead);
      }
    })
    .catch((error: unknown) => {
      options.onError(error, 'writing an HTTP response');
      if (!state.aborted && !state.finished) res.close();
    });
}

/**
 * The uWS streaming pattern: tryEnd each chunk with the total length; when it could not all be
 * written, wait for onWritable and offer the rest from the offset uWS reports. The stream is read
 * only while the socket takes what it gives.
 */
async function pipeResponse(res: HttpResponse, state: Exchange, body: ReadableStream<Uint8Array>, total: number, writeHead: () => void): Promise<void> {
  const reader = body.getReader();
  let wake: (() => void) | undefined;
  state.onAbort.push(() => wake?.());
  // uWS keeps one writable handler per response; a call after this chunk went out is ignored.
  let waiting: Uint8Array | undefined;
  let base = 0;
  let ok = false;
  let finished = false;
  res.onWritable((offset) => {
    if (!waiting) return true;
    [ok, finished] = res.tryEnd(waiting.subarray(offset - base), total);
    if (ok || finished) {
      waiting = undefined;
      wake?.();
    }
    return ok;
  });
  let headWritten = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (state.aborted) {
        await reader.cancel();
        return;
      }
      if (done) throw new Error(`the response body ended before its Content-Length (${total} bytes)`);
      res.cork(() => {
        if (!headWritten) writeHead();
        headWritten = true;
        base = res.getWriteOffset();
        [ok, finished] = res.tryEnd(value, total);
      });
      if (!ok && !finished) {
        waiting = value;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
      if (finished) {
        state.finished = true;
        // More than the Content-Length: the rest is not wanted.
        await reader.cancel();
        return;
      }
      if (state.aborted) {
        await reader.cancel();
        return;
      }
    }
  } catch (error) {
    await reader.cancel().catch(() => {});
    throw error;
  }
}

function remoteAddress(res: HttpResponse): string {
  return decoder.decode(res.getRemoteAddressAsText()).replace(/^::ffff:/, '');
}
