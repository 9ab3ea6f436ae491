import { type Command, Option } from 'commander';
import { type RunningServer, startServer } from '../app.js';
import { createLogger } from '../log.js';
import { VERSION, examples, resolveConfig, withDatabaseOptions } from './common.js';
import { takeDataDirectory, warnAboutReadableKeyFiles } from './serve-files.js';
import { type StopRequest, shutdownRequests } from './shutdown-requests.js';

/** A second copy of the first signal within this long is the same request (see shutdownRequests). */
const DUPLICATE_SIGNAL_MS = 1_000;

interface ServeOptions {
  data?: string;
  config?: string;
  port?: string;
  host?: string;
  transport?: string;
  logLevel?: string;
  /** commander's negated flag: false with --no-web. */
  web?: boolean;
}

export function addServeCommand(program: Command): void {
  const command = program
    .command('serve')
    .description('run the chat server (HTTP + WebSocket) on the configured database')
    .addOption(new Option('-p, --port <port>', 'TCP port (default 8080; 0 picks a free one)'))
    .addOption(new Option('--host <address>', 'address to listen on (default 0.0.0.0)'))
    .addOption(new Option('--transport <kind>', 'socket implementation: auto, uws or node'))
    .addOption(new Option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent'))
    .addOption(new Option('--no-web', 'do not serve the web client at /'));
  withDatabaseOptions(command).action((options: ServeOptions) => serve(options));
  examples(command, [
    'chatd serve',
    'chatd serve --port 9000 --data /var/lib/chatd',
    'chatd serve --config /etc/chatd/config.toml',
    'CHATD_ACCOUNTS_REGISTRATION=open chatd serve',
  ]);
}

async function serve(options: ServeOptions): Promise<void> {
  const config = resolveConfig(options, {
    'server.port': options.port,
    'server.host': options.host,
    'server.transport': options.transport,
    'log.level': options.logLevel,
    'web.enabled': options.web === false ? 'false' : undefined,
  });
  const log = createLogger(config.log.level);
  // Before the database is opened: a second server stops here, before it migrates or listens.
  const lock = takeDataDirectory(config, log);
  warnAboutReadableKeyFiles(config, log);
  let server: RunningServer;
  try {
    server = await startServer(config, log);
  } catch (error) {
    lock.release();
    throw error;
  }
  lock.describe({ port: server.port, host: config.server.host, tls: server.tls !== undefined });

  const step = shutdownRequests(() => performance.now(), DUPLICATE_SIGNAL_MS);
  const shutdown = (signal: StopRequest): void => {
    const next = step(signal);
    if (next === 'ignore') return;
    if (next === 'exit now') {
      log.warn({ signal }, 'second signal: exiting without a clean shutdown');
      process.exit(130);
    }
    log.info({ signal, timeout_ms: config.server.shutdown_timeout_ms }, 'shutting down');
    // The graceful path is bounded inside stop(); this is the last resort if it hangs anyway.
    setTimeout(() => {
      log.error('shutdown did not finish in time; exiting');
      process.exit(1);
    }, config.server.shutdown_timeout_ms + 5_000).unref();
    server
      .stop()
      .then(() => {
        lock.release();
        log.info('stopped');
        // 1 after a lost listening socket, so that a supervisor restarts chatd.
        process.exit(server.listening ? 0 : 1);
      })
      .catch((error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      });
  };
  // Before the banner: whoever starts chatd may stop it as soon as it says it listens.
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
  stopWhenOrphanedByNpm(() => shutdown('parent gone'));
  // SIGHUP (systemctl reload, a certificate renewal hook) swaps the TLS certificate in; without TLS there is nothing to read again.
  process.on('SIGHUP', () => {
    if (!server.tls) {
      log.info('SIGHUP: TLS is off, nothing to reload');
      return;
    }
    try {
      const certificate = server.reloadTls();
      log.info({ signal: 'SIGHUP', ...certificate }, 'TLS certificate reloaded: new connections get it');
    } catch (error) {
      if (server.listening) {
        log.error({ signal: 'SIGHUP', err: error }, 'TLS certificate reload failed; still serving the previous certificate');
        return;
      }
      // Nothing accepts connections any more: stop, and let the supervisor start chatd again.
      log.fatal({ signal: 'SIGHUP', err: error }, 'the listening socket was lost in a TLS certificate reload; stopping');
      shutdown('listening socket lost');
    }
  });

  const shown = config.server.host === '0.0.0.0' || config.server.host === '::' ? 'localhost' : config.server.host;
  const address = shown.includes(':') ? `[${shown}]` : shown;
  console.log(
    `chatd ${VERSION} listening on ${server.tls ? 'https' : 'http'}://${address}:${server.port} (WebSocket /v1/ws, transport ${server.transport}), ` +
      `data in ${server.databaseFile}, registration ${config.accounts.registration}`,
  );
  const details = { port: server.port, host: config.server.host, transport: server.transport, why: server.transportWhy, database: server.databaseFile };
  if (server.transportFallback) log.warn(details, 'uWebSockets.js is not available; running on the slower node transport');
  else log.info(details, 'listening');
  if (server.tls) log.info(server.tls, 'serving HTTPS and WSS with this certificate');
}

/**
 * `npx chatd serve` (and `npm start`) runs chatd through `sh -c`, which does not
 * hand its place to chatd (dash, Debian's sh, forks instead of exec'ing). npm
 * forwards a SIGTERM only to that shell, which dies of it, and chatd would live
 * on, orphaned and still listening. So when npm started this process, losing
 * the parent counts as SIGTERM. Not otherwise: `nohup chatd serve &` must
 * survive the shell that started it. npm sets npm_lifecycle_event for every
 * command it runs ("npx" under npx); Node's process.ppid is fixed at start, so
 * the parent is watched by asking whether it still exists.
 */
function stopWhenOrphanedByNpm(stop: () => void): void {
  if (process.env['npm_lifecycle_event'] === undefined) return;
  const parent = process.ppid;
  const timer = setInterval(() => {
    try {
      process.kill(parent, 0);
    } catch {
      // ESRCH: gone. EPERM: the pid now belongs to another account's process, so ours is gone too.
      clearInterval(timer);
      stop();
    }
  }, 250);
  timer.unref();
}
