import { performance } from 'node:perf_hooks';
import { ErrorReply, createClient, type RedisClientType } from 'redis';
import { redactUrl } from '../../redact-url.js';
import { type LatencySummary, LatencyWindow } from '../../latency.js';
import type { Logger } from '../../log.js';
import { BusStartError, BusUnavailableError, NOT_SERVING } from './errors.js';

/** A node-redis client as the bus makes it (RESP3, no modules). */
export type BusClient = RedisClientType;

export interface RedisBusOptions {
  /** Put before every key and channel (`chatd:`), so that two deployments can share a Redis. */
  readonly prefix: string;
  readonly log: Logger;
  /** This node's id: names its two connections in Redis (CLIENT LIST), for operators. */
  readonly node: string;
  /** How long one connection attempt may take (default 5 s). */
  readonly connectTimeoutMs?: number;
  /** The longest wait between two reconnection attempts (default 2 s): the backoff doubles from 50 ms up to it. */
  readonly maxReconnectDelayMs?: number;
  /** How long `ping()` waits for PONG before saying the bus is down (default 1 s). */
  readonly pingTimeoutMs?: number;
}

/**
 * A node's two connections to Redis: `commands` (keys, scripts, PUBLISH) and
 * `subscriber` (SUBSCRIBE only: a RESP connection in subscribe mode is the
 * reader of its pushes). Both reconnect by themselves with a capped backoff;
 * node-redis subscribes the subscriber's channels again on each reconnection.
 * `commands` fails fast while disconnected (no offline queue: a caller gets
 * BusUnavailableError through `run`, a publication is dropped); `subscriber`
 * keeps a SUBSCRIBE made while disconnected and sends it once back.
 */
export interface RedisBus {
  /** The URL without its password, for messages and logs. */
  readonly label: string;
  readonly prefix: string;
  readonly log: Logger;
  readonly commands: BusClient;
  readonly subscriber: BusClient;
  /** Whether both connections are up now. */
  readonly connected: boolean;
  /**
   * Runs a command on `commands`, records its round trip for `latency()`, and
   * turns a connection that is down (or a Redis not serving: LOADING, BUSY…)
   * into BusUnavailableError; a reply error of the command itself stays as it is.
   */
  run<T>(command: (client: BusClient) => Promise<T>): Promise<T>;
  /** Whether Redis answers now on both connections' behalf (false while either reconnects), within the ping timeout. */
  ping(): Promise<boolean>;
  /** Recent round trips of `run` (publishes, pings, the live seams' commands), for /metrics. */
  latency(): LatencySummary | undefined;
  /** Closes both connections (commands in flight get a short while to finish). */
  close(): Promise<void>;
}

/** Commands queued or awaiting their answer on the command connection, at most. */
const COMMANDS_IN_FLIGHT_MAX = 50_000;

/**
 * Connects both clients, or fails with BusStartError naming the URL without
 * its password: at start nothing is retried (a wrong URL or a Redis that is
 * down must reach the operator now); once started, connections lost are
 * retried forever.
 */
export async function openRedisBus(url: string, options: RedisBusOptions): Promise<RedisBus> {
  const { label, password } = redactRedisUrl(url);
  const log = options.log.child({ engine: 'redis', role: 'bus' });
  const maxDelay = options.maxReconnectDelayMs ?? 2000;
  let starting = true;
  const reconnectStrategy = (retries: number): number | false =>
    starting ? false : Math.min(50 * 2 ** retries, maxDelay) + Math.floor(Math.random() * 50);
  const name = `chatd:${options.node.replace(/[^\w.:-]/g, '_')}`;
  const commands: BusClient = createClient({
    url,
    name: `${name}:commands`,
    disableOfflineQueue: true,
    // Bounded (style: everything bounded): a Redis that stalls without closing the socket would otherwise let
    // publications pile up in memory. Far above what a round trip holds in flight at full load; past it a command
    // fails (a publication is dropped, a presence call gets BusUnavailableError).
    commandsQueueMaxLength: COMMANDS_IN_FLIGHT_MAX,
    // Redis Enterprise's maintenance notices: a plain Redis refuses them, which costs a round trip per connection.
    maintNotifications: 'disabled',
    socket: { connectTimeout: options.connectTimeoutMs ?? 5000, reconnectStrategy },
  });
  // The subscriber keeps what it is asked while disconnected (SUBSCRIBE, UNSUBSCRIBE) and sends it once back, unbounded:
  // it holds at most one command per channel change.
  const subscriber: BusClient = commands.duplicate({ name: `${name}:subscriber`, disableOfflineQueue: false, commandsQueueMaxLength: undefined });
  const isStarting = (): boolean => starting;
  watchConnection(commands, 'commands', log, isStarting);
  watchConnection(subscriber, 'subscriber', log, isStarting);
  try {
    await Promise.all([commands.connect(), subscriber.connect()]);
  } catch (error) {
    commands.destroy();
    subscriber.destroy();
    throw new BusStartError(label, scrub(reason(error), password));
  }
  starting = false;
  log.info({ url: label }, 'connected to Redis');
  return new Bus(label, options.prefix, log, commands, subscriber, options.pingTimeoutMs ?? 1000);
}

class Bus implements RedisBus {
  private readonly roundTrips = new LatencyWindow();

  constructor(
    readonly label: string,
    readonly prefix: string,
    readonly log: Logger,
    readonly commands: BusClient,
    readonly subscriber: BusClient,
    private readonly pingTimeoutMs: number,
  ) {}

  get connected(): boolean {
    return this.commands.isReady && this.subscriber.isReady;
  }

  async run<T>(command: (client: BusClient) => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      const result = await command(this.commands);
      this.roundTrips.record(performance.now() - started);
      return result;
    } catch (error) {
      throw unavailable(error, this.label) ?? error;
    }
  }

  async ping(): Promise<boolean> {
    if (!this.connected) return false;
    try {
      await withDeadline(
        this.run((client) => client.ping()),
        this.pingTimeoutMs,
      );
      return true;
    } catch {
      return false;
    }
  }

  latency(): LatencySummary | undefined {
    return this.roundTrips.summary();
  }

  async close(): Promise<void> {
    await Promise.all([closeClient(this.commands), closeClient(this.subscriber)]);
  }
}

/** Logs the first error of an outage and the connection's return, not every failed attempt in between. */
function watchConnection(client: BusClient, connection: string, log: Logger, starting: () => boolean): void {
  let down = false;
  client.on('error', (error: unknown) => {
    // An error listener is required (node-redis throws otherwise); at start the BusStartError reports it.
    if (starting() || down) return;
    down = true;
    log.warn({ connection, err: reason(error) }, 'lost the connection to Redis: reconnecting');
  });
  client.on('ready', () => {
    if (!down) return;
    down = false;
    log.info({ connection }, 'the connection to Redis is back');
  });
}

function unavailable(error: unknown, label: string): BusUnavailableError | undefined {
  if (error instanceof BusUnavailableError) return error;
  if (error instanceof ErrorReply && !NOT_SERVING.test(error.message)) return undefined;
  return new BusUnavailableError(`the bus (Redis at ${label}) is unavailable: ${reason(error)}`, { cause: error });
}

async function closeClient(client: BusClient): Promise<void> {
  try {
    await withDeadline(client.close(), 1000);
  } catch {
    // Closed already (or Redis is gone and the queue will not drain): destroy below.
  } finally {
    client.destroy();
  }
}

function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

/** The URL as it may be shown and its password (to scrub from a reason), or BusStartError for what is not a redis:// URL. */
function redactRedisUrl(url: string): { label: string; password: string } {
  const label = redactUrl(url);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new BusStartError(label, 'bus.url is not a URL (expected redis://[user[:password]@]host[:port][/db])');
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new BusStartError(label, 'bus.url must start with redis:// or rediss://');
  }
  return { label, password: decodeURIComponent(parsed.password) };
}

/** The reason an error gives; Node's AggregateError (every address refused) has an empty message. */
function reason(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return reason(error.errors[0]);
  if (error instanceof Error) return error.message || (error as NodeJS.ErrnoException).code || error.name;
  return String(error);
}

function scrub(text: string, password: string): string {
  return password === '' ? text : text.replaceAll(password, '***');
}
