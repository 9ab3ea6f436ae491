import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { parseHostPort } from './config/address.js';
import { type Clock, systemClock } from './clock.js';
import type { Config } from './config/schema.js';
import { createKeyChecker } from './crypto/keys.js';
import type { Logger } from './log.js';
import { ChannelRegistry } from './realtime/channels.js';
import { nodeEvents } from './realtime/node-events.js';
import { createProviders, platformsOf, webPushPublicKey } from './push/providers.js';
import { SessionRegistry } from './realtime/sessions.js';
import { PinoAuditLog } from './services/audit.js';
import { ThrottledAuditLog } from './services/audit-throttle.js';
import { MemoryRateLimitStore } from './services/limits/memory-rate-limit-store.js';
import { RevocationWatcher } from './services/revocation-watcher.js';
import { WS_PATH, buildHttp } from './app/http.js';
import { buildAttachments } from './app/attachments.js';
import { type OpenedBus, openBusEngine } from './app/bus-engine.js';
import { openStorageEngine } from './app/storage-engine.js';
import { NodeWatch } from './services/node-watch.js';
import { buildCore } from './app/core.js';
import { buildChatServices } from './app/services.js';
import { connectionLimitsOf, sessionSettingsOf } from './app/settings.js';
import { WireFanout } from './session/fanout.js';
import { chatHandlers } from './session/handlers.js';
import { Session, type SessionDeps } from './session/session.js';
import { StreamSessions } from './session/stream/stream-sessions.js';
import { DATABASE_FILE, DatabaseError, type Db, type MigrationProgress, latestVersion, loadMigrations, migrate, openDatabase, schemaVersion } from './storage/database.js';
import { type MetricsListener, listenForMetrics } from './transport/metrics-listener.js';
import { createTransport } from './transport/select.js';
import { type CertificateInfo, ListenerLostError, type TlsFiles, readTlsFiles } from './transport/tls.js';
import type { Connection, TransportKind } from './transport/types.js';

/** The composition root: the one place that builds every object and wires them together. */

export function databaseFile(config: Config): string {
  return resolve(join(config.storage.dir, DATABASE_FILE));
}

export interface OpenConfiguredOptions {
  readonly mustExist?: boolean;
  /** Hears of the migrations an existing database gets (an upgrade may rebuild a large table); a new one gets them all at once, silently. */
  readonly progress?: MigrationProgress;
  /**
   * False for admin commands: a database of an older schema is refused with
   * the way to upgrade it, rather than migrated under a server of the older
   * version that may hold it open (a rebuild holds the write lock for
   * seconds, and that server could not start again on the new schema). A
   * new database is still created.
   */
  readonly upgrade?: boolean;
}

/** Opens (creating if needed) and migrates the configured database. */
export function openConfiguredDatabase(config: Config, options: OpenConfiguredOptions = {}): Db {
  const db = openDatabase({
    file: databaseFile(config),
    synchronous: config.storage.synchronous,
    busyTimeoutMs: config.storage.busy_timeout_ms,
    walCheckpointPages: config.storage.wal_checkpoint_pages,
    ...(options.mustExist === undefined ? {} : { mustExist: options.mustExist }),
  });
  try {
    const version = schemaVersion(db);
    const migrations = loadMigrations();
    const latest = latestVersion(migrations);
    if (options.upgrade === false && version > 0 && version < latest) {
      throw new DatabaseError(
        `the database schema is version ${version} and this chatd needs ${latest}: ` +
          'stop the server, back the database up (chatd db backup FILE), then upgrade it with `chatd db migrate` or by starting the new server',
      );
    }
    migrate(db, migrations, version > 0 ? options.progress : undefined);
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}


export interface RunningServer {
  readonly port: number;
  readonly transport: TransportKind;
  /** Why this transport runs, and whether it is a fallback worth a warning. */
  readonly transportWhy: string;
  readonly transportFallback: boolean;
  readonly databaseFile: string;
  /** The certificate served, when chatd terminates TLS itself. */
  readonly tls: CertificateInfo | undefined;
  /** Where /metrics is served when metrics.listen gives it a listener of its own. */
  readonly metricsPort: number | undefined;
  /** Reads tls.cert and tls.key again (SIGHUP); throws a StartupError, and keeps serving the old pair, when they cannot be used. */
  reloadTls(): CertificateInfo;
  /** False once a certificate reload lost the listening socket: the server should stop. */
  readonly listening: boolean;
  /** Graceful stop, bounded by server.shutdown_timeout_ms. Resolves once the database is closed. */
  stop(): Promise<void>;
}

/** The certificate and key to serve, resolved from the working directory like storage.dir; undefined when TLS is off. */
function tlsFiles(config: Config): TlsFiles | undefined {
  if (config.tls.cert === '') return undefined;
  return { certFile: resolve(config.tls.cert), keyFile: resolve(config.tls.key) };
}

export async function startServer(config: Config, log: Logger, clock: Clock = systemClock): Promise<RunningServer> {
  const file = databaseFile(config);
  // Key files are checked before anything else: a bad one names its key and stops start-up.
  const providers = await createProviders(config, log);
  const tls = tlsFiles(config);
  if (tls) readTlsFiles(tls);
  const keyChecker = createKeyChecker();
  // This process's id among the nodes: the prefix of its link and presence keys (unique across nodes).
  const node = randomUUID().slice(0, 8);
  const opened = await openStorageEngine(
    config,
    {
      maxMessages: config.inbox.max_messages,
      readDiffusionAbove: config.messages.read_diffusion_above,
      push: platformsOf(providers),
    },
    log,
    {
      file,
      open: () =>
        openConfiguredDatabase(config, {
          progress: {
            applying: (name) => log.info({ migration: name }, 'upgrading the database schema: this can take a while on a large database'),
            applied: (name, ms) => log.info({ migration: name, ms: Math.round(ms) }, 'database schema upgraded'),
          },
        }),
    },
    // The push queue's claims name the node stably across its restarts (it takes its own back at once).
    `${hostname()}:${resolve(config.storage.dir)}`,
  );
  const { storage, epoch } = opened;
  // What is live between nodes: this process's memory, or Redis shared by every node (bus.url).
  let bus: OpenedBus;
  try {
    bus = await openBusEngine(config, node, log);
  } catch (error) {
    await storage.settle();
    storage.close();
    throw error;
  }
  // Refusals are throttled per address: anyone can cause them, without credentials.
  const audit = new ThrottledAuditLog(new PinoAuditLog(log), clock);
  const { broker, links, presenceStore } = bus;
  // Links are named node:counter, unique across nodes.
  let linkCount = 0;
  // The services' own revocations go to every node through the broker, whose handler gives them to the watcher;
  // the watcher hands those, and the ones other processes (the admin CLI, which has no broker) commit, to the registry.
  const core = buildCore(config, storage, clock, { revoked: (revocations) => broker.publishControl({ kind: 'revoked', revocations }) }, audit);
  const registry = new SessionRegistry((deviceId) => core.accounts.isSignedIn(deviceId), links);
  const ws = config.websocket;
  const sessionSettings = sessionSettingsOf(config);
  // Limits across connections: per address, user and device. Per node by design (docs/scaling.md, "Limits are per node").
  const limitStore = new MemoryRateLimitStore(clock);
  const connectionLimits = connectionLimitsOf(config, limitStore, clock);
  // The transport is made below, with the sessions that need the channels: publish reaches it late.
  let publish: (topic: string, text: string) => void = () => {};
  const channels = new ChannelRegistry(broker, links, (topic, text) => publish(topic, text));
  const fanout = new WireFanout(broker);
  const { services, delivery, pushes } = buildChatServices({
    config,
    storage,
    accounts: core.accounts,
    clock,
    log,
    audit,
    fanout,
    broker,
    links,
    presenceStore,
    node,
    limitStore,
    keyChecker,
    providers,
  });
  const revocationWatcher = new RevocationWatcher({
    events: storage.accountEvents,
    clock,
    // Connections close first; then the revoked devices' keys are announced (revoked: true) to whoever may see them.
    listener: {
      revoked: (revocations) => {
        registry.revoked(revocations);
        services.keys.revoked(revocations).catch((error: unknown) => log.error({ err: error }, 'announcing the keys of revoked devices failed'));
      },
    },
    log,
    intervalMs: config.storage.revocation_poll_ms,
  });
  broker.run(nodeEvents({ channels, revocations: revocationWatcher, delivery }));
  const attachments = buildAttachments(config, { storage, clock, log, limits: limitStore });
  const handlers = chatHandlers(services);
  // One Session class for both transports of the chat protocol: a WebSocket, or a /v1/stream session.
  // One dependencies object for every session: each idle connection holds a reference, not a copy.
  const sessionDeps: SessionDeps = {
    accounts: core.accounts,
    limits: connectionLimits,
    services,
    handlers,
    registry,
    channels,
    links,
    delivery,
    linkKey: () => `${node}:${++linkCount}`,
    clock,
    log,
    audit,
    epoch,
    settings: sessionSettings,
  };
  const acceptSession = (connection: Connection): Session => new Session(connection, sessionDeps);
  const onTransportError = (error: unknown, where: string): void => log.error({ err: error, where }, 'a request handler failed; the client got an internal error');
  // Sessions register in `registry` themselves: connections(), revocations and shutdown reach stream sessions too.
  const streams = config.stream.enabled
    ? new StreamSessions(node, acceptSession, {
        resumeFrames: config.stream.resume_frames,
        keepaliveMs: config.stream.keepalive_ms,
        pollTimeoutMs: config.stream.poll_timeout_ms,
        maxBufferedBytes: ws.max_buffered_bytes,
      }, onTransportError)
    : undefined;
  let ready = false;
  const http = buildHttp(config, log, {
    storage,
    engines: [opened.health, bus.health],
    accounts: core.accounts,
    pushTokens: services.pushTokens,
    webPushKey: webPushPublicKey(providers),
    attachments,
    ready: () => ready,
    connections: () => registry.size,
    pushProviders: () => pushes.providerStates(),
    streams,
  });
  const { metrics, metricsRouter } = http;
  // One node: the devices still marked live when it last stopped get their handover now. With several, the
  // others may hold those devices live: a dead node's devices are handed over by the node watch instead.
  if (!bus.nodes) {
    const recovered = await delivery.recoverLiveDevices();
    if (recovered > 0) log.info({ devices: recovered }, 'inbox entries written for the devices still connected when the server last stopped');
  }
  const choice = await createTransport(config.server.transport, {
    http: http.handler,
    streamsBody: http.streamsBody,
    maxBodyBytes: config.http.max_body_bytes,
    ...(tls ? { tls } : {}),
    onError: onTransportError,
    websocket: {
      path: WS_PATH,
      // Frames up to twice the limit reach the session, which answers them with an error and carries on;
      // only larger ones make the library close the connection (1009).
      maxPayloadBytes: 2 * ws.max_frame_bytes,
      // Above our own slow-consumer limit, so that the sweep cuts a slow reader before the library starts dropping its frames.
      maxBufferedBytes: 2 * ws.max_buffered_bytes,
      idleTimeoutSeconds: Math.min(960, Math.max(8, Math.ceil((2 * ws.heartbeat_timeout_ms) / 1000))),
      accept: acceptSession,
    },
  });
  const transport = choice.server;
  // A thread's events reach its WebSockets (the transport's topics) and its stream sessions (their own table).
  publish = streams
    ? (topic, text) => {
        transport.publish(topic, text);
        streams.publish(topic, text);
      }
    : (topic, text) => transport.publish(topic, text);
  const expireInboxes = clock.setInterval(() => {
    delivery.expireInboxes().then(
      (devices) => {
        if (devices.length > 0) log.info({ devices: devices.length }, 'dropped inbox entries past inbox.max_age_days; those devices will sync');
      },
      (error: unknown) => log.error({ err: error }, 'expiring inboxes failed'),
    );
    services.deviceMessages.expire().then(
      (deviceMessages) => {
        if (deviceMessages > 0) log.info({ messages: deviceMessages }, 'dropped device messages past e2e.device_message_ttl_days');
      },
      (error: unknown) => log.error({ err: error }, 'dropping expired device messages failed'),
    );
  }, 60_000);
  const sweepEveryMs = Math.max(50, Math.min(1000, Math.floor(Math.min(ws.auth_timeout_ms, ws.heartbeat_timeout_ms) / 4)));
  const sweeper = clock.setInterval(() => registry.sweep(clock.now()), sweepEveryMs);
  await revocationWatcher.start();
  const watch = bus.nodes
    ? new NodeWatch({
        nodes: bus.nodes,
        connections: presenceStore,
        presence: services.presence,
        delivery,
        clock,
        heartbeatMs: config.bus.heartbeat_ms,
        forgotten: () => {
          // Declared dead while away (or Redis lost its data): this node's presence and liveness may have been
          // swept. Its clients reconnect (here or elsewhere) and rebuild both.
          log.warn({ node, connections: registry.size }, 'this node was declared dead by the others (or Redis lost its data): closing its connections so that they come back whole');
          registry.closeAll('going_away', 'the server lost its place among the nodes; reconnect');
        },
        failed: (error) => log.warn({ err: error }, 'the node heartbeat or the sweep of dead nodes failed; trying again at the next heartbeat'),
      })
    : undefined;
  await watch?.start();

  let port: number;
  let metricsListener: MetricsListener | undefined;
  try {
    port = await transport.listen(config.server.host, config.server.port);
    if (metricsRouter) {
      const address = parseHostPort(config.metrics.listen);
      if ('error' in address) throw new Error(`metrics.listen ${address.error}`);
      metricsListener = await listenForMetrics(address.host, address.port, metricsRouter.handle);
      log.info({ host: address.host, port: metricsListener.port }, 'serving /metrics on its own listener');
    }
  } catch (error) {
    clock.clearTimer(sweeper);
    clock.clearTimer(expireInboxes);
    revocationWatcher.stop();
    await watch?.stop();
    metrics?.stop();
    await pushes.stop();
    await transport.close();
    await broker.close();
    await bus.close();
    storage.close();
    throw error;
  }
  ready = true;
  pushes.start();
  // Every node collects: the database decides in its transaction, and a file another node deleted first is no error.
  attachments.collector.start(config.attachments.gc_interval_minutes * 60_000);
  if (providers.size > 0) log.info({ providers: [...providers.keys()] }, 'push notifications on');

  let lostListener = false;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      ready = false;
      transport.stopListening();
      registry.closeAll('going_away', 'server shutting down');
      const deadline = Date.now() + config.server.shutdown_timeout_ms;
      while ((http.inFlight() > 0 || registry.size > 0) && Date.now() < deadline) {
        await new Promise((done) => setTimeout(done, 20));
      }
      if (http.inFlight() > 0 || registry.size > 0) {
        log.warn({ requests: http.inFlight(), connections: registry.size }, 'shutdown timeout reached; closing the rest');
      }
      clock.clearTimer(sweeper);
      clock.clearTimer(expireInboxes);
      revocationWatcher.stop();
      await attachments.collector.stop();
      metrics?.stop();
      await metricsListener?.close();
      await services.presence.stop();
      await watch?.stop();
      // Pushes waiting for a provider stay queued: the next start sends them.
      await pushes.stop();
      // Sends already accepted into the group commit are stored (and acked) before the sockets close,
      // and what the closing connections still write (their inboxes, last-seen times) before the database closes.
      await storage.settle();
      await transport.close();
      if (bus.nodes) {
        // Gone cleanly: nothing of this node is left for the others to sweep (its grace-period presence keys).
        await presenceStore
          .removeAll(`${node}:`)
          .then(() => bus.nodes?.forget(node))
          .catch((error: unknown) => log.warn({ err: error }, 'leaving the node directory failed; the other nodes will sweep this node after its heartbeat lapses'));
      }
      await broker.close();
      await bus.close();
      await storage.settle();
      storage.close();
    })();
    return stopping;
  };

  return {
    port,
    transport: transport.kind,
    transportWhy: choice.why,
    transportFallback: choice.fallback,
    databaseFile: opened.where,
    get tls() {
      return transport.certificate();
    },
    metricsPort: metricsListener?.port,
    reloadTls: () => {
      try {
        return transport.reloadTls();
      } catch (error) {
        if (error instanceof ListenerLostError) lostListener = true;
        throw error;
      }
    },
    get listening() {
      return !lostListener;
    },
    stop,
  };
}
