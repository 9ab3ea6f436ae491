import { ChatError } from '../../errors.js';
import type { Principal } from '../../services/types.js';
import { errorResponse, noContent } from './respond.js';
import type { Router } from './router.js';

/**
 * /v1/stream: the fallback transport for networks that break WebSockets — an event stream down,
 * batched POSTs up, the same JSON frames as /v1/ws (docs/protocol.md, "The stream transport").
 * These routes read and check HTTP (body, token, headers); the sessions live behind StreamEndpoint.
 */

export const STREAM_PATH = '/v1/stream';

export type StreamMode = 'stream' | 'poll';

/** The socket's peer, as a WebSocket connection has it. */
export interface StreamPeer {
  readonly remoteAddress: string;
  readonly forwardedFor: string | undefined;
}

/** What the routes need of the stream sessions (src/session/stream). Refusals are ChatErrors. */
export interface StreamEndpoint {
  /** Opens a session with client frames (the first is auth; `token` is its token); the response carries its frames down. */
  open(frames: readonly string[], token: string | undefined, mode: StreamMode, peer: StreamPeer): Promise<Response>;
  /**
   * The device of this node's open, authenticated session `sid` when `token` is the token it
   * authenticated with; undefined otherwise (unknown sid, another token): the request's token is then
   * checked as any other's, so the answers stay those of the full check.
   */
  deviceBearing(sid: string, token: string): number | undefined;
  /** Hands frames to session `sid` of the device that sent `token`, in order; stream_not_found when it has none such. */
  post(sid: string, deviceId: number, token: string, frames: readonly string[]): void;
  /** The frames after `lastEventId`, then live (stream) or as soon as there are any (poll); bad_request, resume_failed, stream_not_found. */
  resume(sid: string, deviceId: number, token: string, lastEventId: number, mode: StreamMode): Promise<Response>;
  /** Ends session `sid` of the device that sent `token` as its client's close (1000); stream_not_found when it has none such. */
  end(sid: string, deviceId: number, token: string): void;
}

export interface StreamLimits {
  readonly maxBatchFrames: number;
  /** http.max_body_bytes. */
  readonly maxBodyBytes: number;
  /** websocket.max_frame_bytes: any frame the WebSocket takes must also fit in a POST of its own. */
  readonly maxFrameBytes: number;
}

/** Room in a POST body beyond one frame of websocket.max_frame_bytes: the brackets, and a little for a second small frame. */
const BATCH_SLACK_BYTES = 1024;

/**
 * The largest body a /v1/stream POST may have: http.max_body_bytes, but never less than one frame of
 * websocket.max_frame_bytes (with room to spare), or a frame the WebSocket takes could never go up
 * the stream (413 each time, however the client splits its batches).
 */
function streamBodyLimit(limits: StreamLimits): number {
  return Math.max(limits.maxBodyBytes, limits.maxFrameBytes + BATCH_SLACK_BYTES);
}

export function addStreamRoutes(
  router: Router,
  endpoint: StreamEndpoint,
  authenticate: (request: Request, address?: string) => Promise<Principal>,
  limits: StreamLimits,
): void {
  router.add('GET', STREAM_PATH, () =>
    errorResponse(new ChatError('method_not_allowed', `open a stream session with POST ${STREAM_PATH} (a JSON array of frames, the first an auth frame)`), {
      allow: 'POST',
    }),
  );

  // The POST routes read their body themselves, to their own limit (streamBodyLimit), not http.max_body_bytes.
  const bodyLimit = streamBodyLimit(limits);
  router.add(
    'POST',
    STREAM_PATH,
    async (request, context) => {
      const mode = modeOf(request);
      const frames = await readFrames(request, limits.maxBatchFrames, bodyLimit);
      const first = frames[0];
      if (typeof first !== 'object' || first === null || Array.isArray(first) || (first as { type?: unknown }).type !== 'auth') {
        throw new ChatError('bad_request', 'the first frame must be the auth frame: [{"type":"auth","id":"…","token":"…"}, …]');
      }
      const token = (first as { token?: unknown }).token;
      return endpoint.open(
        frames.map((frame) => JSON.stringify(frame)),
        typeof token === 'string' ? token : undefined,
        mode,
        // The router's client address already applied http.trust_proxy: the session gets it as the peer.
        { remoteAddress: context.clientAddress, forwardedFor: undefined },
      );
    },
    { streamBody: true },
  );

  /**
   * The device behind the request's token. A live session's own token needs no lookup (the session
   * checked it when it opened, and is closed when its device is revoked); any other token is checked
   * in full, so that an unknown sid, another device's session and a bad token get the answers they
   * always got (404 stream_not_found, 401), and a wrong token says nothing about the sid.
   */
  const deviceOf = async (request: Request, sid: string, address: string): Promise<number> => {
    const token = bearerToken(request);
    return (token === '' ? undefined : endpoint.deviceBearing(sid, token)) ?? (await authenticate(request, address)).deviceId;
  };

  router.add(
    'POST',
    `${STREAM_PATH}/:sid`,
    async (request, context) => {
      const sid = context.params.sid ?? '';
      const deviceId = await deviceOf(request, sid, context.clientAddress);
      const frames = await readFrames(request, limits.maxBatchFrames, bodyLimit);
      endpoint.post(sid, deviceId, bearerToken(request), frames.map((frame) => JSON.stringify(frame)));
      return noContent();
    },
    { streamBody: true },
  );

  // The client's close: without it a session the client left would hold its connection slot and take
  // frames until the heartbeat deadline.
  router.add('DELETE', `${STREAM_PATH}/:sid`, async (request, context) => {
    const principal = await authenticate(request, context.clientAddress);
    endpoint.end(context.params.sid ?? '', principal.deviceId, bearerToken(request));
    return noContent();
  });

  router.add('GET', `${STREAM_PATH}/:sid`, async (request, context) => {
    // The router answers HEAD with this route: a HEAD would attach a response and end the client's live one.
    if (request.method === 'HEAD') {
      return errorResponse(
        new ChatError('method_not_allowed', `HEAD is not supported on ${STREAM_PATH}/<sid>; resume with GET, send frames with POST, close with DELETE`),
        { allow: 'GET, POST, DELETE' },
      );
    }
    const principal = { deviceId: await deviceOf(request, context.params.sid ?? '', context.clientAddress) };
    const header = request.headers.get('last-event-id');
    const value = (header ?? '0').trim();
    if (!/^\d{1,15}$/.test(value)) throw new ChatError('bad_request', `Last-Event-ID must be the id of the last frame received (0 for none), not "${header}"`);
    return endpoint.resume(context.params.sid ?? '', principal.deviceId, bearerToken(request), Number(value), modeOf(request));
  });
}

function modeOf(request: Request): StreamMode {
  const mode = new URL(request.url).searchParams.get('mode') ?? 'stream';
  if (mode !== 'stream' && mode !== 'poll') throw new ChatError('bad_request', `mode must be "stream" or "poll", not "${mode}"`);
  return mode;
}

function bearerToken(request: Request): string {
  return /^Bearer\s+(\S+)\s*$/i.exec(request.headers.get('authorization') ?? '')?.[1] ?? '';
}

/** The body: a JSON array of 1..maxBatchFrames frames of at most `maxBytes` in all, refused whole otherwise. */
async function readFrames(request: Request, maxBatchFrames: number, maxBytes: number): Promise<unknown[]> {
  const text = await readText(request, maxBytes);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ChatError('invalid_json', `the request body is not valid JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(value)) throw new ChatError('invalid_json', 'the request body must be a JSON array of frames');
  if (value.length === 0) throw new ChatError('bad_request', 'the batch is empty; send at least one frame');
  if (value.length > maxBatchFrames) {
    throw new ChatError('payload_too_large', `${value.length} frames in one batch; the limit is ${maxBatchFrames} (stream.max_batch_frames)`);
  }
  return value;
}

/** The body as text, read no further than `maxBytes` (the transport does not bound a streamBody route's body). */
async function readText(request: Request, maxBytes: number): Promise<string> {
  const tooLarge = (): ChatError =>
    new ChatError('payload_too_large', `the request body is larger than the limit of ${maxBytes} bytes (the larger of http.max_body_bytes and websocket.max_frame_bytes + ${BATCH_SLACK_BYTES})`);
  if (Number(request.headers.get('content-length') ?? 0) > maxBytes) throw tooLarge();
  if (!request.body) return '';
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
