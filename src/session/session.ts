import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import { ChatError, type CloseReason, CloseCodes } from '../errors.js';
import { FrameError, decodeClientFrame } from '../protocol/decode.js';
import { encodeFrame, errorFrame } from '../protocol/encode.js';
import { type AuthFrame, type ClientFrame, PROTOCOL_VERSION, type ServerFrame } from '../protocol/frames.js';
import type { SessionRegistry, LiveSession } from '../realtime/sessions.js';
import type { AccountService } from '../services/accounts.js';
import type { Principal } from '../services/types.js';
import type { Connection, ConnectionListener } from '../transport/types.js';

export interface SessionSettings {
  readonly authTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly heartbeatTimeoutMs: number;
  readonly maxFrameBytes: number;
}

export interface SessionDeps {
  readonly accounts: AccountService;
  readonly registry: SessionRegistry;
  readonly clock: Clock;
  readonly log: Logger;
  readonly epoch: string;
  readonly settings: SessionSettings;
}

/**
 * One WebSocket connection's life: authenticate with the first frame, then
 * dispatch each frame and answer each request exactly once. Any frame after
 * authentication counts as a sign of life and moves the heartbeat deadline.
 * The only place that turns service results into wire frames.
 */
export class Session implements ConnectionListener, LiveSession {
  private principal: Principal | undefined;
  private closed = false;
  deadline: number;

  constructor(
    private readonly connection: Connection,
    private readonly deps: SessionDeps,
  ) {
    this.deadline = deps.clock.now() + deps.settings.authTimeoutMs;
    deps.registry.add(this);
  }

  get deviceId(): number | undefined {
    return this.principal?.deviceId;
  }

  onMessage(text: string): void {
    let frame: ClientFrame;
    try {
      frame = decodeClientFrame(text, this.deps.settings.maxFrameBytes);
    } catch (error) {
      const failure = error as FrameError;
      this.send(errorFrame(failure.requestId, failure));
      return;
    }
    if (!this.principal) {
      if (frame.type === 'auth') this.authenticate(frame);
      else this.send(errorFrame(frame.id, new ChatError('unauthorized', 'authenticate first: send {"type":"auth","id":"…","token":"…"}')));
      return;
    }
    this.deadline = this.deps.clock.now() + this.deps.settings.heartbeatTimeoutMs;
    switch (frame.type) {
      case 'auth':
        this.send(errorFrame(frame.id, new ChatError('bad_request', 'this connection is already authenticated')));
        return;
      case 'ping':
        this.send({ type: 'pong', id: frame.id });
        return;
    }
  }

  onBinary(): void {
    this.send(errorFrame(null, new ChatError('invalid_frame', 'binary frames are not accepted; send JSON text frames')));
  }

  onDrain(): void {}

  onClose(code: number, reason: string): void {
    this.closed = true;
    this.deps.registry.remove(this);
    this.deps.log.debug({ device: this.principal?.deviceId, code, reason }, 'connection closed');
  }

  /** Called by the registry's sweep once the deadline has passed. */
  expire(): void {
    if (this.principal) this.close('heartbeat_timeout', `no frame for ${this.deps.settings.heartbeatTimeoutMs} ms`);
    else this.close('auth_timeout', `not authenticated within ${this.deps.settings.authTimeoutMs} ms`);
  }

  close(reason: CloseReason, message: string): void {
    if (this.closed) return;
    this.closed = true;
    this.connection.close(CloseCodes[reason].code, message);
  }

  private authenticate(frame: AuthFrame): void {
    const { accounts, registry, clock, settings, epoch } = this.deps;
    let principal: Principal;
    try {
      principal = accounts.authenticate(frame.token);
    } catch (error) {
      this.send(errorFrame(frame.id, error as ChatError));
      this.close('auth_failed', (error as ChatError).message);
      return;
    }
    this.principal = principal;
    this.deadline = clock.now() + settings.heartbeatTimeoutMs;
    registry.bind(this, principal.deviceId);
    accounts.deviceConnected(principal);
    this.send({
      type: 'welcome',
      id: frame.id,
      protocol: PROTOCOL_VERSION,
      epoch,
      user: { id: principal.user.id, username: principal.user.username, display_name: principal.user.displayName },
      device_id: principal.deviceId,
      heartbeat_interval_ms: settings.heartbeatIntervalMs,
      heartbeat_timeout_ms: settings.heartbeatTimeoutMs,
      limits: { max_frame_bytes: settings.maxFrameBytes },
    });
  }

  private send(frame: ServerFrame): void {
    if (!this.closed) this.connection.send(encodeFrame(frame));
  }
}
