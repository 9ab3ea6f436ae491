import { ChatError } from '../../errors.js';
import type { RateLimitStore } from './rate-limit-store.js';
import { addressKey } from './address-key.js';

export interface ConnectionLimitSettings {
  /** After a close for flooding (4004): how long its device and user are refused. */
  readonly pauseAfterFloodMs: number;
  readonly connectionsPerAddressPerMinute: number;
  readonly authPerAddressPerMinute: number;
  readonly authPerUserPerMinute: number;
  readonly authPerDevicePerMinute: number;
  /** Connections open and not yet authenticated, on this node. */
  readonly maxUnauthenticated: number;
  readonly maxUnauthenticatedPerAddress: number;
  readonly maxConnectionsPerUser: number;
  readonly maxConnectionsPerDevice: number;
}

export interface ConnectionLimitsDeps {
  /** What outlives a connection and concerns every node: buckets, pauses, live counts per user and device. */
  readonly shared: RateLimitStore;
  /** This node's own counts: a connection that has not authenticated exists on one node only. */
  readonly local: RateLimitStore;
  readonly settings: ConnectionLimitSettings;
}

const MINUTE_MS = 60_000;
/** Retry hint for a refusal that ends when another connection closes, not at a known time. */
const FULL_RETRY_SECONDS = 5;

/**
 * The limits that hold across connections, so that reconnecting does not reset
 * them: per address, per user and per device. The session asks at each step of
 * a connection's life through the ConnectionSlot it is given at open; each
 * refusal is a `rate_limited` ChatError with the seconds to wait.
 */
export class ConnectionLimits {
  constructor(private readonly deps: ConnectionLimitsDeps) {}

  /** A WebSocket from `clientAddress` opened (counted under its addressKey: an IPv6 address by its /64). Refused past its connection rate, or when too many connections wait for auth. */
  open(clientAddress: string): ConnectionSlot {
    const { shared, local, settings } = this.deps;
    const address = addressKey(clientAddress);
    const rate = shared.take(`connect:address:${address}`, { burst: settings.connectionsPerAddressPerMinute, refillMs: MINUTE_MS });
    if (!rate.allowed) {
      throw limited(`more than ${settings.connectionsPerAddressPerMinute} connections a minute from this address`, rate.retryAfterSeconds, 'connections_per_address_per_minute');
    }
    if (!local.acquire('unauthenticated', settings.maxUnauthenticated)) {
      throw limited(`the server already has ${settings.maxUnauthenticated} connections waiting to authenticate`, FULL_RETRY_SECONDS, 'max_unauthenticated');
    }
    if (!local.acquire(`unauthenticated:address:${address}`, settings.maxUnauthenticatedPerAddress)) {
      local.release('unauthenticated');
      throw limited(`this address already has ${settings.maxUnauthenticatedPerAddress} connections waiting to authenticate`, FULL_RETRY_SECONDS, 'max_unauthenticated_per_address');
    }
    return new ConnectionSlot(this.deps, address);
  }
}

/**
 * What one admitted connection holds: a place among the unauthenticated ones,
 * then, once authenticated, one among its user's and its device's live
 * connections. release() gives back whatever it holds, once.
 */
export class ConnectionSlot {
  private state: 'unauthenticated' | 'live' | 'released' = 'unauthenticated';
  private principal: { readonly userId: number; readonly deviceId: number } | undefined;

  constructor(
    private readonly deps: ConnectionLimitsDeps,
    private readonly address: string,
  ) {}

  /** An auth frame arrived: counted per address whatever its token. */
  authAttempt(): void {
    const { shared, settings } = this.deps;
    const rate = shared.take(`auth:address:${this.address}`, { burst: settings.authPerAddressPerMinute, refillMs: MINUTE_MS });
    if (!rate.allowed) throw limited(`more than ${settings.authPerAddressPerMinute} authentications a minute from this address`, rate.retryAfterSeconds, 'auth_per_address_per_minute');
  }

  /**
   * The token named this user and device. Refused while either is paused, past
   * their authentication rates, or when either has its most live connections.
   * On success the connection counts as theirs until release().
   */
  authenticated(userId: number, deviceId: number): void {
    const { shared, settings } = this.deps;
    refuseWhilePaused(shared, `pause:device:${deviceId}`, 'this device is paused after a flood');
    refuseWhilePaused(shared, `pause:user:${userId}`, 'this user is paused after a flood');
    const byDevice = shared.take(`auth:device:${deviceId}`, { burst: settings.authPerDevicePerMinute, refillMs: MINUTE_MS });
    if (!byDevice.allowed) throw limited(`more than ${settings.authPerDevicePerMinute} connections a minute for this device`, byDevice.retryAfterSeconds, 'auth_per_device_per_minute');
    const byUser = shared.take(`auth:user:${userId}`, { burst: settings.authPerUserPerMinute, refillMs: MINUTE_MS });
    if (!byUser.allowed) throw limited(`more than ${settings.authPerUserPerMinute} connections a minute for this user`, byUser.retryAfterSeconds, 'auth_per_user_per_minute');
    if (!shared.acquire(`live:device:${deviceId}`, settings.maxConnectionsPerDevice)) {
      throw limited(`this device already has ${settings.maxConnectionsPerDevice} connections`, FULL_RETRY_SECONDS, 'max_connections_per_device');
    }
    if (!shared.acquire(`live:user:${userId}`, settings.maxConnectionsPerUser)) {
      shared.release(`live:device:${deviceId}`);
      throw limited(`this user already has ${settings.maxConnectionsPerUser} connections`, FULL_RETRY_SECONDS, 'max_connections_per_user');
    }
    this.releaseUnauthenticated();
    this.principal = { userId, deviceId };
    this.state = 'live';
  }

  /**
   * The connection is being closed for flooding (4004): its device and user are
   * refused for the pause that 4004 asks for. An address is never paused, not
   * even one that flooded before auth: others may share it (NAT, a proxy), and
   * one anonymous client could keep them all out. Before auth the per-address
   * connection rate and unauthenticated caps bound a flooder instead. Returns
   * the pause in seconds, for the client (0: reconnect when you like).
   */
  flooded(): number {
    const { shared, settings } = this.deps;
    if (!this.principal) return 0;
    shared.pause(`pause:device:${this.principal.deviceId}`, settings.pauseAfterFloodMs);
    shared.pause(`pause:user:${this.principal.userId}`, settings.pauseAfterFloodMs);
    return Math.ceil(settings.pauseAfterFloodMs / 1000);
  }

  /** The connection is closing: gives back what it holds. Safe to call more than once. */
  release(): void {
    if (this.state === 'unauthenticated') this.releaseUnauthenticated();
    if (this.state === 'live' && this.principal) {
      this.deps.shared.release(`live:device:${this.principal.deviceId}`);
      this.deps.shared.release(`live:user:${this.principal.userId}`);
    }
    this.state = 'released';
  }

  private releaseUnauthenticated(): void {
    if (this.state !== 'unauthenticated') return;
    this.deps.local.release('unauthenticated');
    this.deps.local.release(`unauthenticated:address:${this.address}`);
  }
}

function refuseWhilePaused(store: RateLimitStore, key: string, why: string): void {
  const ms = store.pausedFor(key);
  if (ms > 0) throw limited(why, Math.ceil(ms / 1000), 'pause_after_flood_seconds');
}

/** `key`: the [limits] key that refused, told to the client (error.limit) and to the audit log as `limits.<key>`. */
function limited(why: string, retryAfterSeconds: number, key: string): ChatError {
  return new ChatError('rate_limited', `${why}; try again in ${retryAfterSeconds} s`, { retryAfterSeconds, details: { limit: `limits.${key}` } });
}
