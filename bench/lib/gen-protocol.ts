/** How a device reaches the server: the WebSocket, or the stream transport's event stream or long poll (/v1/stream). */
export type Transport = 'websocket' | 'stream' | 'poll';

/**
 * How the direct receivers ack `delivered`: every 200th message (enough to keep their inbox small; the direct
 * scenarios' historical figures), or as the SDK's receiver does: once per moment (after the frames of a socket read),
 * the highest seq seen, one ack in flight (what arrives meanwhile goes in the next); `sdk-read`: the same, and a
 * `read` of the same seq the same way, as the web client does for a chat that is open and visible.
 */
export type ReceiverAcks = 'every-200' | 'sdk' | 'sdk-read';

/** What the bench's main thread asks of a load-generator thread, and what it reports. */
export type GenTask =
  | {
      readonly kind: 'pairs';
      readonly worker: number;
      readonly wsUrl: string;
      /** Receivers connect to `receiverWsUrl` when given (another node), senders to `wsUrl`. */
      readonly pairs: ReadonlyArray<{ readonly senderToken: string; readonly receiverToken: string; readonly threadId: number; readonly receiverWsUrl?: string }>;
      readonly mode: { readonly kind: 'window'; readonly window: number } | { readonly kind: 'rate'; readonly perSecond: number };
      readonly padBytes: number;
      readonly warmupMs: number;
      /** The devices' transport (default websocket); the stream's URL is wsUrl's host over http. */
      readonly transport?: Transport;
      /** How receivers ack `delivered` (default every 200 messages). */
      readonly receiverAcks?: ReceiverAcks;
    }
  | {
      readonly kind: 'group';
      readonly worker: number;
      readonly wsUrl: string;
      /** A member with a `wsUrl` connects there (its node), the others to the task's. */
      readonly members: ReadonlyArray<{ readonly token: string; readonly threadId: number; readonly senderIndex?: number; readonly wsUrl?: string }>;
      readonly window: number;
      readonly padBytes: number;
      readonly warmupMs: number;
      /**
       * Every member device acks `delivered` as the SDK's receiver does: after each socket read, one ack per thread
       * with the highest seq seen, at most one in flight per thread (what arrives meanwhile goes in the next one).
       */
      readonly acks?: boolean;
    }
  | { readonly kind: 'idle'; readonly worker: number; readonly wsUrl: string; readonly tokens: readonly string[]; readonly heartbeatMs: number; readonly transport?: Transport }
  | { readonly kind: 'storm'; readonly worker: number; readonly wsUrl: string; readonly tokens: readonly string[] }
  /** Bare uWS: `echo` connections each keep `window` messages in flight; `publish`: `connections` subscribers, the first `publishers` of them publishing. */
  | {
      readonly kind: 'raw';
      readonly worker: number;
      readonly wsUrl: string;
      readonly connections: number;
      readonly publishers: number;
      readonly window: number;
      readonly warmupMs: number;
    };

export interface WorkerReport {
  acked: number;
  delivered: number;
  /** ms; for `storm`, the absolute time each device finished draining. */
  ackLatencies: number[];
  deliverLatencies: number[];
  errors: number;
  /** group: [message key, sent at, last delivery seen by this worker] (absolute ms). */
  lastDelivery: Array<[number, number, number]>;
  /** Stream transport: the POSTs sent up over the whole run and the frames they carried. */
  posts?: number;
  postedFrames?: number;
  /** Group with acks, in the measured window: `receipt` frames received by any device of this worker. */
  receipts?: number;
  /** The same: `delivered` replies whose seq moved past the device's previous one (its user's cursor moved: one device per user). */
  cursorMoves?: number;
}
