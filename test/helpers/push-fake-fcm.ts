import { createPublicKey, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Answers, RequestLog, verifiedJwt, isRecord, parseJson, nowSeconds, portOf, type Responder } from './push-fake-shared.js';
import { GOOGLE_TOKEN_URI, type TestPki } from './push-pki.js';

// ---------------------------------------------------------------------------
// FCM

export interface FakeFcmOptions {
  /** The service-account file whose key must sign the token requests (from `serviceAccountJson`). */
  readonly serviceAccountFile: string;
}

/** FCM's own error codes (google.firebase.fcm.v1.FcmError), which firebase-admin maps to `messaging/...` codes. */
export type FcmErrorCode =
  | 'UNREGISTERED' | 'INVALID_ARGUMENT' | 'QUOTA_EXCEEDED' | 'INTERNAL' | 'UNAVAILABLE'
  | 'SENDER_ID_MISMATCH' | 'THIRD_PARTY_AUTH_ERROR' | 'UNSPECIFIED_ERROR';

/**
 * What the fake answers: an error as FCM HTTP v1 shapes it (`errorCode` goes in
 * the FcmError detail; without it only the canonical status is sent), with
 * `Retry-After` in seconds, or no answer at all.
 */
export type FcmReply = 'hang' | { readonly status: number; readonly errorCode?: FcmErrorCode; readonly retryAfter?: number };

export interface FcmRequest {
  readonly projectId: string;
  /** `body.message` as posted: token, notification, data, android, apns... */
  readonly message: Record<string, unknown>;
  /** Whether `validate_only` (firebase-admin's dryRun) was set. */
  readonly validateOnly: boolean;
  /** Date.now() on arrival. */
  readonly at: number;
}

export interface FcmRecord extends FcmRequest {
  readonly reply: FcmReply;
}

export interface FakeFcm {
  readonly port: number;
  /** Every authorized `messages:send` request, in arrival order. */
  readonly requests: readonly FcmRecord[];
  /** Requests to the OAuth2 token endpoint, refused ones included. */
  readonly tokenRequests: number;
  /** Requests turned away for a missing or unknown access token. */
  readonly unauthorized: number;
  /** TLS connections accepted so far. */
  readonly connections: number;
  respondWith(responder: Responder<FcmRequest, FcmReply>): void;
  /**
   * The next `count` requests to the token endpoint fail as an outage does
   * (503 with a JSON error that is not about the credential), then it issues
   * tokens again.
   */
  failTokenRequests(count: number): void;
  waitForRequests(count: number, timeoutMs?: number): Promise<readonly FcmRecord[]>;
  /** Closes every connection (hung requests end with it) and the server. */
  close(): Promise<void>;
}

/** google.rpc canonical status for an HTTP status, as FCM's error bodies carry it. */
const CANONICAL_STATUS: Readonly<Record<number, string>> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
};

const FCM_ERROR_MESSAGES: Readonly<Record<FcmErrorCode, string>> = {
  UNREGISTERED: 'Requested entity was not found.',
  INVALID_ARGUMENT: 'The registration token is not a valid FCM registration token',
  QUOTA_EXCEEDED: 'Quota exceeded for quota metric \'Send requests\'.',
  INTERNAL: 'Internal error encountered.',
  UNAVAILABLE: 'The service is currently unavailable.',
  SENDER_ID_MISMATCH: 'SenderId mismatch',
  THIRD_PARTY_AUTH_ERROR: 'Auth error from APNS or Web Push Service',
  UNSPECIFIED_ERROR: 'Unknown error.',
};

const FCM_SEND_PATH = /^\/v1\/projects\/([^/]+)\/messages:send$/;
const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

export async function startFakeFcm(pki: TestPki, options: FakeFcmOptions): Promise<FakeFcm> {
  const account: unknown = JSON.parse(readFileSync(options.serviceAccountFile, 'utf8'));
  if (!isRecord(account) || typeof account.private_key !== 'string' || typeof account.client_email !== 'string') {
    throw new Error(`${options.serviceAccountFile} is not a service-account file`);
  }
  const accountKey = createPublicKey(account.private_key);
  const accountEmail = account.client_email;
  const accessTokens = new Set<string>();
  const log = new RequestLog<FcmRecord>();
  const answers = new Answers<FcmRequest, FcmReply>();
  let tokenRequests = 0;
  let tokenFailures = 0;
  let unauthorized = 0;
  let connections = 0;

  const json = (response: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void => {
    response.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', ...extra });
    response.end(JSON.stringify(body));
  };
  const fcmError = (response: ServerResponse, status: number, errorCode: FcmErrorCode | undefined, message: string, extra: Record<string, string> = {}): void => {
    const details = errorCode === undefined
      ? []
      : [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode }];
    json(response, status, { error: { code: status, message, status: CANONICAL_STATUS[status] ?? 'UNKNOWN', details } }, extra);
  };

  const issueToken = (body: string, response: ServerResponse): void => {
    tokenRequests += 1;
    if (tokenFailures > 0) {
      tokenFailures -= 1;
      json(response, 503, { error: 'temporarily_unavailable', error_description: 'The service is currently unavailable.' });
      return;
    }
    const form = new URLSearchParams(body);
    const jwt = verifiedJwt(form.get('assertion') ?? '', 'RS256', accountKey);
    const claims = jwt?.claims;
    const valid = form.get('grant_type') === JWT_BEARER_GRANT
      && claims !== undefined
      && claims.iss === accountEmail
      && claims.aud === GOOGLE_TOKEN_URI
      && typeof claims.scope === 'string'
      && /\/auth\/(firebase\.messaging|cloud-platform)\b/.test(claims.scope)
      && typeof claims.exp === 'number' && claims.exp > nowSeconds();
    if (!valid) {
      json(response, 400, { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' });
      return;
    }
    const accessToken = `ya29.fake-${randomBytes(24).toString('base64url')}`;
    accessTokens.add(accessToken);
    json(response, 200, { access_token: accessToken, expires_in: 3600, token_type: 'Bearer' });
  };

  const sendMessage = (projectId: string, request: IncomingMessage, body: string, response: ServerResponse): void => {
    const token = /^Bearer (\S+)$/.exec(request.headers.authorization ?? '')?.[1];
    if (token === undefined || !accessTokens.has(token)) {
      unauthorized += 1;
      fcmError(response, 401, undefined, 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.');
      return;
    }
    const parsed = parseJson(body);
    if (!isRecord(parsed) || !isRecord(parsed.message)) {
      fcmError(response, 400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.');
      return;
    }
    const sent: FcmRequest = {
      projectId,
      message: parsed.message,
      validateOnly: parsed.validate_only === true,
      at: Date.now(),
    };
    const reply = answers.next(sent) ?? { status: 200 };
    log.add({ ...sent, reply });
    if (reply === 'hang') return;
    if (reply.status === 200) {
      const id = `0:${Date.now()}%${randomBytes(8).toString('hex')}`;
      json(response, 200, { name: `projects/${projectId}/messages/${id}` });
      return;
    }
    const extra: Record<string, string> = reply.retryAfter === undefined ? {} : { 'retry-after': String(reply.retryAfter) };
    const message = reply.errorCode === undefined ? 'Error.' : FCM_ERROR_MESSAGES[reply.errorCode];
    fcmError(response, reply.status, reply.errorCode, message, extra);
  };

  const server = https.createServer({ cert: readFileSync(pki.certFile), key: readFileSync(pki.keyFile) });
  server.on('secureConnection', (socket: Socket) => {
    connections += 1;
    socket.on('error', () => {});
  });
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const host = (request.headers.host ?? '').replace(/:\d+$/, '');
      const path = request.url ?? '';
      const send = FCM_SEND_PATH.exec(path);
      if (request.method === 'POST' && host === 'oauth2.googleapis.com' && path === '/token') {
        issueToken(body, response);
      } else if (request.method === 'POST' && host === 'fcm.googleapis.com' && send !== null) {
        sendMessage(decodeURIComponent(send[1] as string), request, body, response);
      } else {
        fcmError(response, 404, undefined, `No route for ${request.method} ${host}${path}`);
      }
    });
  });

  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = portOf(server);

  return {
    port,
    requests: log.entries,
    get tokenRequests() {
      return tokenRequests;
    },
    get unauthorized() {
      return unauthorized;
    },
    get connections() {
      return connections;
    },
    respondWith: (responder) => answers.set(responder),
    failTokenRequests: (count) => {
      tokenFailures = count;
    },
    waitForRequests: (count, timeoutMs = 5000) => log.waitFor(count, timeoutMs, 'fake FCM'),
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
