import { join, resolve } from 'node:path';
import { type Clock, systemClock } from './clock.js';
import type { Config } from './config/schema.js';
import { PasswordHasher } from './crypto/passwords.js';
import { ChatError } from './errors.js';
import type { Logger } from './log.js';
import { SessionRegistry } from './realtime/sessions.js';
import { AccountService } from './services/accounts.js';
import { AdminService } from './services/admin.js';
import { RateLimiter } from './services/rate-limiter.js';
import type { RevocationListener } from './services/types.js';
import { Session } from './session/session.js';
import { DATABASE_FILE, type Db, checkpoint, migrate, openDatabase, readEpoch } from './storage/database.js';
import { Store } from './storage/store.js';
import { addAccountRoutes } from './transport/http/accounts.js';
import { addHealthRoutes } from './transport/http/health.js';
import { errorResponse } from './transport/http/respond.js';
import { Router } from './transport/http/router.js';
import { createTransport } from './transport/select.js';
import type { HttpHandler, TransportKind } from './transport/types.js';

/** The composition root: the one place that builds every object and wires them together. */

export function databaseFile(config: Config): string {
  return resolve(join(config.storage.dir, DATABASE_FILE));
}

/** Opens (creating if needed) and migrates the configured database. */
export function openConfiguredDatabase(config: Config, options: { mustExist?: boolean } = {}): Db {
  const db = openDatabase({
    file: databaseFile(config),
    synchronous: config.storage.synchronous,
    busyTimeoutMs: config.storage.busy_timeout_ms,
    ...options,
  });
  try {
    migrate(db);
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

interface Core {
  readonly store: Store;
  readonly hasher: PasswordHasher;
  readonly accounts: AccountService;
  readonly admin: AdminService;
}

function buildCore(config: Config, db: Db, clock: Clock, revocations: RevocationListener): Core {
  const store = new Store(db);
  const hasher = new PasswordHasher({
    memoryKib: config.passwords.memory_kib,
    timeCost: config.passwords.time_cost,
    parallelism: config.passwords.parallelism,
  });
  const windowMs = config.rate_limit.window_seconds * 1000;
  const accounts = new AccountService({
    store,
    hasher,
    clock,
    settings: { registration: config.accounts.registration, passwordMinLength: config.accounts.password_min_length },
    usernameLimiter: new RateLimiter(clock, config.rate_limit.login_per_username, windowMs),
    addressLimiter: new RateLimiter(clock, config.rate_limit.login_per_address, windowMs),
    revocations,
  });
  const admin = new AdminService({ store, accounts, hasher, clock, passwordMinLength: config.accounts.password_min_length, revocations });
  return { store, hasher, accounts, admin };
}

/** What the admin CLI works with: the services over the database, no sockets. */
export interface AdminContext {
  readonly db: Db;
  readonly admin: AdminService;
  readonly file: string;
  close(): void;
}

export function openAdmin(config: Config): AdminContext {
  const db = openConfiguredDatabase(config);
  // Live connections belong to the server process; the CLI cannot reach them.
  // A revoked device's token stops working at once; its open socket closes at its next reconnect.
  const core = buildCore(config, db, systemClock, { devicesRevoked: () => {} });
  return { db, admin: core.admin, file: databaseFile(config), close: () => db.close() };
}

export interface RunningServer {
  readonly port: number;
  readonly transport: TransportKind;
  /** Why this transport runs, and whether it is a fallback worth a warning. */
  readonly transportWhy: string;
  readonly transportFallback: boolean;
  readonly databaseFile: string;
  /** Graceful stop, bounded by server.shutdown_timeout_ms. Resolves once the database is closed. */
  stop(): Promise<void>;
}

const WS_PATH = '/v1/ws';

export async function startServer(config: Config, log: Logger, clock: Clock = systemClock): Promise<RunningServer> {
  const file = databaseFile(config);
  const db = openConfiguredDatabase(config);
  const epoch = readEpoch(db);
  const registry = new SessionRegistry();
  const core = buildCore(config, db, clock, registry);
  let ready = false;
  let inFlight = 0;

  const router = new Router(log, config.http.trust_proxy);
  addHealthRoutes(router, {
    databaseReachable: () => core.store.ping(),
    ready: () => ready,
  });
  addAccountRoutes(router, core.accounts);
  // The socket library takes WebSocket upgrades first; a plain GET here is a client mistake worth explaining.
  router.add('GET', WS_PATH, () =>
    errorResponse(new ChatError('upgrade_required', `${WS_PATH} speaks WebSocket only; connect with a WebSocket client`)),
  );
  const http: HttpHandler = async (request, context) => {
    inFlight++;
    try {
      return await router.handle(request, context);
    } finally {
      inFlight--;
    }
  };

  const ws = config.websocket;
  const sessionSettings = {
    authTimeoutMs: ws.auth_timeout_ms,
    heartbeatIntervalMs: ws.heartbeat_interval_ms,
    heartbeatTimeoutMs: ws.heartbeat_timeout_ms,
    maxFrameBytes: ws.max_frame_bytes,
  };
  const choice = createTransport(config.server.transport, {
    http,
    maxBodyBytes: config.http.max_body_bytes,
    websocket: {
      path: WS_PATH,
      maxPayloadBytes: ws.max_frame_bytes,
      maxBufferedBytes: 4 * 1024 * 1024,
      idleTimeoutSeconds: Math.min(960, Math.max(8, Math.ceil((2 * ws.heartbeat_timeout_ms) / 1000))),
      accept: (connection) => new Session(connection, { accounts: core.accounts, registry, clock, log, epoch, settings: sessionSettings }),
    },
  });
  const transport = choice.server;
  const sweepEveryMs = Math.max(50, Math.min(1000, Math.floor(Math.min(ws.auth_timeout_ms, ws.heartbeat_timeout_ms) / 4)));
  const sweeper = setInterval(() => registry.sweep(clock.now()), sweepEveryMs);

  let port: number;
  try {
    port = await transport.listen(config.server.host, config.server.port);
  } catch (error) {
    clearInterval(sweeper);
    await transport.close();
    db.close();
    throw error;
  }
  ready = true;

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      ready = false;
      transport.stopListening();
      registry.closeAll('going_away', 'server shutting down');
      const deadline = Date.now() + config.server.shutdown_timeout_ms;
      while ((inFlight > 0 || registry.size > 0) && Date.now() < deadline) {
        await new Promise((done) => setTimeout(done, 20));
      }
      if (inFlight > 0 || registry.size > 0) {
        log.warn({ requests: inFlight, connections: registry.size }, 'shutdown timeout reached; closing the rest');
      }
      clearInterval(sweeper);
      await transport.close();
      checkpoint(db);
      db.close();
    })();
    return stopping;
  };

  return { port, transport: transport.kind, transportWhy: choice.why, transportFallback: choice.fallback, databaseFile: file, stop };
}
