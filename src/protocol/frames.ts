import type { ErrorCode } from '../errors.js';

/** Every WebSocket frame, both ways, as JSON text. Documented in docs/protocol.md. */

export const PROTOCOL_VERSION = 1;

/** A request id chosen by the client; echoed in the one reply the request gets. */
export type RequestId = string;

export interface AuthFrame {
  readonly type: 'auth';
  readonly id: RequestId;
  readonly token: string;
}

export interface PingFrame {
  readonly type: 'ping';
  readonly id: RequestId;
}

export type ClientFrame = AuthFrame | PingFrame;
export type ClientFrameType = ClientFrame['type'];

export interface WelcomeFrame {
  readonly type: 'welcome';
  readonly id: RequestId;
  readonly protocol: number;
  /** Random per database; a new value means the server's data was replaced (restored backup): drop cursors and sync afresh. */
  readonly epoch: string;
  readonly user: { readonly id: number; readonly username: string; readonly display_name: string };
  readonly device_id: number;
  readonly heartbeat_interval_ms: number;
  readonly heartbeat_timeout_ms: number;
  readonly limits: { readonly max_frame_bytes: number };
}

export interface PongFrame {
  readonly type: 'pong';
  readonly id: RequestId;
}

export interface ErrorFrame {
  readonly type: 'error';
  /** The failed request's id; null when the frame was too broken to have one. */
  readonly id: RequestId | null;
  readonly error: { readonly code: ErrorCode; readonly message: string; readonly retryable: boolean };
}

export type ServerFrame = WelcomeFrame | PongFrame | ErrorFrame;
