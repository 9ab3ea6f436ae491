import type { CertificateInfo, TlsFiles } from './tls.js';

/**
 * The transport's two seams. HTTP handlers take a web-standard Request and
 * return a Response (as Hono's do); WebSocket code sees only Connection. The
 * `uws` and `node` implementations adapt their socket library to these, so
 * nothing above the transport knows which one runs.
 */

export type TransportKind = 'uws' | 'node';

/**
 * What a handler errors an event stream's body with to drop its connection at once instead of ending
 * the response: the transport closes the socket, discarding whatever it and the kernel still hold for a
 * client that may never read it (a newer response of the same session replaced this one), and logs nothing.
 */
export class ResponseCutError extends Error {
  constructor() {
    super('the response was cut: a newer one took its place');
    this.name = 'ResponseCutError';
  }
}

export interface HttpContext {
  /** The peer's IP address as the socket sees it (a proxy's, behind one). */
  readonly remoteAddress: string;
}

export type HttpHandler = (request: Request, context: HttpContext) => Promise<Response>;

/** 'sent': written; 'buffered': queued behind backpressure; 'dropped': the connection is closed or over its buffer limit. */
export type SendStatus = 'sent' | 'buffered' | 'dropped';

/** One live WebSocket, as the session sees it. Calls after close are ignored. */
export interface Connection {
  /** The peer's IP address as the socket sees it (a proxy's, behind one). */
  readonly remoteAddress: string;
  /** The X-Forwarded-For header of the upgrade request, if it had one: the client address behind a trusted proxy. */
  readonly forwardedFor: string | undefined;
  send(text: string): SendStatus;
  /** Bytes accepted by send() and not yet written to the network. */
  bufferedAmount(): number;
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  /**
   * Runs `work` with this connection's sends gathered with the other frames of
   * this event-loop iteration into as few network writes as possible (uWS);
   * a plain call elsewhere. Order is kept; sends inside report 'sent', and
   * backpressure shows in bufferedAmount() afterwards.
   */
  gather(work: () => void): void;
  /** Sends a close frame; the listener's onClose follows (possibly before close returns). */
  close(code: number, reason: string): void;
}

/** What the transport calls for each connection, from open to close. */
export interface ConnectionListener {
  onMessage(text: string): void;
  /** A binary frame: chatd speaks JSON text only. */
  onBinary(): void;
  /** The send buffer has emptied below the library's threshold. */
  onDrain(): void;
  onClose(code: number, reason: string): void;
}

export interface WebSocketRoute {
  readonly path: string;
  /** Frames past this make the socket library close the connection (1009; uWS may just drop it). */
  readonly maxPayloadBytes: number;
  /** Send buffer past which the library drops frames (send returns 'dropped'). */
  readonly maxBufferedBytes: number;
  /** WebSocket-level idle timeout with automatic pings: the second line of defence behind app heartbeats. */
  readonly idleTimeoutSeconds: number;
  accept(connection: Connection): ConnectionListener;
}

export interface TransportOptions {
  readonly http: HttpHandler;
  readonly websocket: WebSocketRoute;
  /** Request bodies past this are refused with 413 before the handler runs, except on routes that stream their body. */
  readonly maxBodyBytes: number;
  /**
   * Whether the handler for `method` on `path` (the request target; a query is ignored) reads the
   * request body as a stream (Router.streamsBody; absent: none does). For such requests the
   * handler's `request.body` is a ReadableStream fed from the socket as the handler reads it (the
   * socket is not read further while about REQUEST_QUEUE_BYTES wait), maxBodyBytes does not
   * apply, and a client that goes away mid-body errors the stream with RequestAbortedError.
   *
   * Responses need no such flag: one with a body and a Content-Length header is written as the
   * handler's stream yields it, only as fast as the client reads (HEAD: headers only); one with
   * Content-Type text/event-stream is written likewise without a length (chunked, each chunk
   * flushed; its headers leave with its first non-empty chunk) and its stream is cancelled as soon
   * as the client goes away, even while it waits for its next chunk (isEventStream); any other
   * response is read whole first, then sent.
   */
  readonly streamsBody?: (method: string, path: string) => boolean;
  /**
   * Called with whatever a handler or listener threw that nothing above caught. The transport
   * has already answered (500, or closed the WebSocket with 1011); this only reports it, so a
   * bug in one request never ends the process.
   */
  readonly onError: (error: unknown, where: string) => void;
  /** Serve HTTPS and WSS with this certificate (checked with readTlsFiles before any socket opens); plain HTTP without. */
  readonly tls?: TlsFiles;
}

export interface TransportServer {
  readonly kind: TransportKind;
  /** Starts listening; resolves to the bound port (useful with port 0). */
  listen(host: string, port: number): Promise<number>;
  /** Sends `text` once to every connection subscribed to `topic`. */
  publish(topic: string, text: string): void;
  /** Stops accepting new connections; open ones carry on. */
  stopListening(): void;
  /** Ends every remaining connection at once and releases the server. */
  close(): Promise<void>;
  /** The certificate new connections get; undefined without TLS. */
  certificate(): CertificateInfo | undefined;
  /**
   * Reads the TLS files again and serves new connections with them; open
   * connections keep the certificate they began with. Throws a StartupError
   * (naming the file) and keeps the previous certificate when the new one
   * cannot be used.
   */
  reloadTls(): CertificateInfo;
}
