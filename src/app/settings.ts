import type { Clock } from '../clock.js';
import type { Config } from '../config/schema.js';
import { ConnectionLimits } from '../services/limits/connection-limits.js';
import type { RateLimitStore } from '../services/limits/rate-limit-store.js';
import { MemoryRateLimitStore } from '../services/limits/memory-rate-limit-store.js';
import type { SessionSettings } from '../session/session.js';

/** The configuration, as each connection's session reads it. */
export function sessionSettingsOf(config: Config): SessionSettings {
  const ws = config.websocket;
  return {
    authTimeoutMs: ws.auth_timeout_ms,
    heartbeatIntervalMs: ws.heartbeat_interval_ms,
    heartbeatTimeoutMs: ws.heartbeat_timeout_ms,
    maxFrameBytes: ws.max_frame_bytes,
    maxBodyBytes: config.messages.max_body_bytes,
    framesPerSecond: ws.frames_per_second,
    maxRefusedFrames: ws.max_refused_frames,
    maxBufferedBytes: ws.max_buffered_bytes,
    historyPageMax: config.messages.history_page_max,
    maxGroupMembers: config.messages.max_group_members,
    userSendsPerSecond: config.limits.user_sends_per_second,
    maxConnectionsPerDevice: config.limits.max_connections_per_device,
    trustProxy: config.http.trust_proxy,
  };
}

/**
 * Limits across connections: per address, user and device. `shared`: the
 * store all nodes would share (one node's memory for now); what only this
 * node counts stays in a store of its own.
 */
export function connectionLimitsOf(config: Config, shared: RateLimitStore, clock: Clock): ConnectionLimits {
  const limits = config.limits;
  return new ConnectionLimits({
    shared,
    local: new MemoryRateLimitStore(clock),
    settings: {
      pauseAfterFloodMs: limits.pause_after_flood_seconds * 1000,
      connectionsPerAddressPerMinute: limits.connections_per_address_per_minute,
      authPerAddressPerMinute: limits.auth_per_address_per_minute,
      authPerUserPerMinute: limits.auth_per_user_per_minute,
      authPerDevicePerMinute: limits.auth_per_device_per_minute,
      maxUnauthenticated: limits.max_unauthenticated,
      maxUnauthenticatedPerAddress: limits.max_unauthenticated_per_address,
      maxConnectionsPerUser: limits.max_connections_per_user,
      maxConnectionsPerDevice: limits.max_connections_per_device,
    },
  });
}
