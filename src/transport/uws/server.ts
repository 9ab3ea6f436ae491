import type { TemplatedApp, WebSocket, us_listen_socket } from 'uWebSockets.js';
import { CloseCodes, StartupError } from '../../errors.js';
import { SERVER_ADDRESS_SETTINGS, whyNotListening } from '../listen-failure.js';
import { ListenerLostError, readTlsFiles } from '../tls.js';
import type { Connection, ConnectionListener, SendStatus, TransportOptions, TransportServer } from '../types.js';
import { remoteAddress, serveHttp } from './http-exchange.js';
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
    this.holdOwnTopic();
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
    if (this.closed) return;
    // uWS frees a socket's subscriber with its last topic, and with it the frames its topics queued for
    // the socket in this iteration (a removed member's last message of the thread it leaves). The own
    // topic keeps it: a connection that leaves a thread pays for it, an idle one never does.
    this.holdOwnTopic();
    this.ws.unsubscribe(topic);
  }

  private holdOwnTopic(): void {
    if (this.ownTopic) return;
    this.ownTopic = `c:${++connectionCount}`;
    this.ws.subscribe(this.ownTopic);
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
          reject(new StartupError(`cannot listen on ${host}:${port}: ${whyNotListening(undefined, undefined, SERVER_ADDRESS_SETTINGS)}`));
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
