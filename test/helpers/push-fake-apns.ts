import { createPublicKey, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import { Answers, RequestLog, verifiedJwt, parseJson, nowSeconds, portOf, type Responder } from './push-fake-shared.js';
import type { TestPki } from './push-pki.js';

// ---------------------------------------------------------------------------
// APNs

export interface FakeApnsOptions {
  /** The key id (`kid`) provider tokens must carry. Default `TESTKEY001`. */
  readonly keyId?: string;
  /** The team id (`iss`) provider tokens must carry. Default `TESTTEAM01`. */
  readonly teamId?: string;
}

export const APNS_KEY_ID = 'TESTKEY001';
export const APNS_TEAM_ID = 'TESTTEAM01';

const APNS_HEADERS = ['apns-topic', 'apns-collapse-id', 'apns-push-type', 'apns-priority', 'apns-expiration', 'apns-id'] as const;
type ApnsHeaderName = (typeof APNS_HEADERS)[number];

export interface ApnsRequest {
  readonly token: string;
  readonly headers: Readonly<Record<ApnsHeaderName, string | undefined>>;
  /** The parsed JSON body (undefined when it did not parse). */
  readonly payload: unknown;
  /** Whether the provider token was valid. */
  readonly authorized: boolean;
  /** Date.now() on arrival. */
  readonly at: number;
}

/** What the fake answers: a status with APNs' `reason` (and `Retry-After`, in seconds), or no answer at all. */
export type ApnsReply = 'hang' | { readonly status: number; readonly reason?: string; readonly retryAfter?: number };

export interface ApnsRecord extends ApnsRequest {
  /** What it was answered; 403 for a bad provider token. */
  readonly reply: ApnsReply;
}

export interface FakeApns {
  readonly port: number;
  /** Every `/3/device/` request, in arrival order, bad provider tokens included. */
  readonly requests: readonly ApnsRecord[];
  /** TLS connections accepted so far (node-apn keeps one HTTP/2 session per provider). */
  readonly connections: number;
  /** Replaces the answers to come (requests with a bad provider token always get 403). */
  respondWith(responder: Responder<ApnsRequest, ApnsReply>): void;
  waitForRequests(count: number, timeoutMs?: number): Promise<readonly ApnsRecord[]>;
  /** Closes every session (hung requests end with it) and the server. */
  close(): Promise<void>;
}

/** Apple's limit for a regular notification's payload. */
const APNS_MAX_PAYLOAD_BYTES = 4096;

export async function startFakeApns(pki: TestPki, options: FakeApnsOptions = {}): Promise<FakeApns> {
  const keyId = options.keyId ?? APNS_KEY_ID;
  const teamId = options.teamId ?? APNS_TEAM_ID;
  const publicKey = createPublicKey(readFileSync(pki.apnsKeyFile));
  const log = new RequestLog<ApnsRecord>();
  const answers = new Answers<ApnsRequest, ApnsReply>();
  const sessions = new Set<http2.ServerHttp2Session>();
  let connections = 0;

  const authorized = (header: string | undefined): boolean => {
    const match = /^bearer (\S+)$/i.exec(header ?? '');
    if (match === null) return false;
    const jwt = verifiedJwt(match[1] as string, 'ES256', publicKey);
    if (jwt === null || jwt.header.kid !== keyId || jwt.claims.iss !== teamId) return false;
    // Apple takes tokens up to an hour old.
    const issuedAt = jwt.claims.iat;
    return typeof issuedAt === 'number' && Math.abs(nowSeconds() - issuedAt) <= 3600;
  };

  const server = http2.createSecureServer({ cert: readFileSync(pki.certFile), key: readFileSync(pki.keyFile) });
  server.on('session', (session) => {
    connections += 1;
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  server.on('stream', (stream, headers) => {
    const answer = (status: number, body?: Record<string, unknown>, extra: http2.OutgoingHttpHeaders = {}): void => {
      if (stream.closed || stream.destroyed) return;
      const apnsId = typeof headers['apns-id'] === 'string' ? headers['apns-id'] : randomUUID();
      stream.respond({ ':status': status, 'apns-id': apnsId, ...extra, ...(body ? { 'content-type': 'application/json' } : {}) });
      stream.end(body ? JSON.stringify(body) : undefined);
    };
    const path = String(headers[':path'] ?? '');
    const match = /^\/3\/device\/([^/?]+)$/.exec(path);
    if (match === null) {
      stream.resume();
      answer(404, { reason: 'BadPath' });
      return;
    }
    if (headers[':method'] !== 'POST') {
      stream.resume();
      answer(405, { reason: 'MethodNotAllowed' });
      return;
    }
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => {
      const body = Buffer.concat(chunks);
      const picked = {} as Record<ApnsHeaderName, string | undefined>;
      for (const name of APNS_HEADERS) {
        const value = headers[name];
        picked[name] = typeof value === 'string' ? value : undefined;
      }
      const request: ApnsRequest = {
        token: decodeURIComponent(match[1] as string),
        headers: picked,
        payload: parseJson(body.toString('utf8')),
        authorized: authorized(typeof headers.authorization === 'string' ? headers.authorization : undefined),
        at: Date.now(),
      };
      const reply: ApnsReply = !request.authorized
        ? { status: 403, reason: 'InvalidProviderToken' }
        : picked['apns-topic'] === undefined
          ? { status: 400, reason: 'MissingTopic' }
          : body.length === 0
            ? { status: 400, reason: 'PayloadEmpty' }
            : body.length > APNS_MAX_PAYLOAD_BYTES
              ? { status: 413, reason: 'PayloadTooLarge' }
              : answers.next(request) ?? { status: 200 };
      log.add({ ...request, reply });
      if (reply === 'hang') return;
      if (reply.status === 200) {
        answer(200);
        return;
      }
      const extra: http2.OutgoingHttpHeaders = reply.retryAfter === undefined ? {} : { 'retry-after': String(reply.retryAfter) };
      const reason = reply.reason ?? 'InternalServerError';
      answer(reply.status, reply.status === 410 ? { reason, timestamp: Date.now() } : { reason }, extra);
    });
  });

  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = portOf(server);

  return {
    port,
    requests: log.entries,
    get connections() {
      return connections;
    },
    respondWith: (responder) => answers.set(responder),
    waitForRequests: (count, timeoutMs = 5000) => log.waitFor(count, timeoutMs, 'fake APNs'),
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const session of sessions) session.destroy();
      await closed;
    },
  };
}
