import { execFileSync } from 'node:child_process';
import { type KeyObject, createPublicKey, generateKeyPairSync, randomBytes, randomUUID, verify } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';

/*
 * Stand-ins for the two push providers, spoken to over their real protocols so
 * that the real client libraries (@parse/node-apn, firebase-admin) can be
 * pointed at them:
 *
 * - APNs: HTTP/2 over TLS, `POST /3/device/<token>`, ES256 provider tokens.
 *   node-apn reaches it with the provider options `address: 'localhost'`,
 *   `port` and `ca: [pki.caFile]`.
 * - FCM: HTTP/1.1 over TLS, the OAuth2 token endpoint that a service-account
 *   credential calls (`POST https://oauth2.googleapis.com/token`) and
 *   `POST https://fcm.googleapis.com/v1/projects/<project>/messages:send`.
 *   firebase-admin has no endpoint option: it reaches the fake through
 *   `redirectingAgent`, passed both to `cert(path, agent)` and as the app's
 *   `httpAgent`.
 *
 * Both listen on 127.0.0.1, port 0, with a certificate from `makeTestPki`.
 */

// ---------------------------------------------------------------------------
// Keys and certificates

export interface TestPki {
  /** PEM of the test CA that signed `certFile`; clients must trust it. */
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** An APNs auth key: P-256, PKCS#8 PEM, as Apple's .p8 files are. */
  readonly apnsKeyFile: string;
}

/**
 * Names the server certificate answers for. localhost and 127.0.0.1 for
 * node-apn's `address`; the Google hosts because firebase-admin's requests keep
 * their real host names (SNI and Host) while the agent dials the fake:
 * google-auth-library 10 (used by firebase-admin 13's service-account
 * credential) posts to https://oauth2.googleapis.com/token. The Apple hosts let
 * a redirecting connection keep node-apn's default address too.
 */
export const TEST_CERT_HOSTS: readonly string[] = [
  'localhost',
  'fcm.googleapis.com',
  'oauth2.googleapis.com',
  'accounts.google.com',
  'www.googleapis.com',
  'api.push.apple.com',
  'api.sandbox.push.apple.com',
];

/** Makes a test CA, a server certificate it signs and an APNs key in `dir`, with the openssl CLI. */
export function makeTestPki(dir: string): TestPki {
  const file = (name: string): string => join(dir, name);
  const openssl = (...args: string[]): void => {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  };
  const ecKey = (path: string): void =>
    openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path);

  writeFileSync(file('ca.cnf'), [
    '[req]', 'distinguished_name = dn', 'prompt = no', 'x509_extensions = ca_ext',
    '[dn]', 'CN = chatd test CA',
    '[ca_ext]',
    'basicConstraints = critical, CA:TRUE',
    'keyUsage = critical, keyCertSign, cRLSign',
    'subjectKeyIdentifier = hash',
    '',
  ].join('\n'));
  writeFileSync(file('server.cnf'), [
    '[req]', 'distinguished_name = dn', 'prompt = no',
    '[dn]', 'CN = localhost',
    '[server_ext]',
    'basicConstraints = critical, CA:FALSE',
    'keyUsage = critical, digitalSignature',
    'extendedKeyUsage = serverAuth',
    'authorityKeyIdentifier = keyid',
    `subjectAltName = IP:127.0.0.1, ${TEST_CERT_HOSTS.map((host) => `DNS:${host}`).join(', ')}`,
    '',
  ].join('\n'));

  ecKey(file('ca-key.pem'));
  openssl('req', '-x509', '-new', '-config', file('ca.cnf'), '-key', file('ca-key.pem'),
    '-days', '2', '-out', file('ca.pem'));
  ecKey(file('server-key.pem'));
  openssl('req', '-new', '-config', file('server.cnf'), '-key', file('server-key.pem'), '-out', file('server.csr'));
  openssl('x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca-key.pem'),
    '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '2',
    '-extfile', file('server.cnf'), '-extensions', 'server_ext', '-out', file('server.pem'));
  ecKey(file('apns-key.p8'));

  return {
    caFile: file('ca.pem'),
    certFile: file('server.pem'),
    keyFile: file('server-key.pem'),
    apnsKeyFile: file('apns-key.p8'),
  };
}

/** The token endpoint of Google's OAuth2 service, as service-account files name it. */
export const GOOGLE_TOKEN_URI = 'https://oauth2.googleapis.com/token';

/**
 * Writes a service-account JSON file with a freshly made RSA key, as the
 * Firebase console hands out, and returns its path. `name` tells apart several
 * accounts in one directory.
 */
export function serviceAccountJson(dir: string, projectId: string, name = 'service-account'): string {
  const { privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify({
    type: 'service_account',
    project_id: projectId,
    private_key_id: randomBytes(20).toString('hex'),
    private_key: privateKey,
    client_email: `${name}@${projectId}.iam.gserviceaccount.com`,
    client_id: String(100_000_000_000_000_000_000n + BigInt(randomBytes(4).readUInt32BE())),
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: GOOGLE_TOKEN_URI,
    auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
    client_x509_cert_url: `https://www.googleapis.com/robot/v1/metadata/x509/${name}`,
    universe_domain: 'googleapis.com',
  }, null, 2));
  return path;
}

/**
 * An agent that dials `host:port` whatever host a request names, keeping that
 * name for SNI and certificate checks, so a library with fixed URLs can be sent
 * to a fake. With `caFile` it trusts only that CA; without, the usual roots
 * (plus NODE_EXTRA_CA_CERTS).
 */
export function redirectingAgent(host: string, port: number, caFile?: string): https.Agent {
  const ca = caFile === undefined ? undefined : readFileSync(caFile);
  const agent = new https.Agent({ keepAlive: true, ...(ca === undefined ? {} : { ca }) });
  agent.createConnection = (options) => {
    const { servername, host: namedHost } = options as tls.ConnectionOptions;
    return tls.connect({
      ...(options as tls.ConnectionOptions),
      host,
      port,
      servername: servername ?? namedHost ?? undefined,
    });
  };
  return agent;
}

// ---------------------------------------------------------------------------
// What both fakes share: a log tests can wait on, and programmable answers

/** Answers a test programs: a function of the request (undefined: the default answer) or a queue used up in order. */
export type Responder<Request, Reply> = ((request: Request) => Reply | undefined) | readonly Reply[];

class Answers<Request, Reply> {
  private responder: Responder<Request, Reply> = [];
  private queue: Reply[] = [];

  set(responder: Responder<Request, Reply>): void {
    this.responder = responder;
    this.queue = typeof responder === 'function' ? [] : [...responder];
  }

  next(request: Request): Reply | undefined {
    return typeof this.responder === 'function' ? this.responder(request) : this.queue.shift();
  }
}

interface Waiter {
  readonly count: number;
  readonly resolve: () => void;
}

/** An append-only record whose readers wait for a count by event, not by polling. */
class RequestLog<Entry> {
  readonly entries: Entry[] = [];
  private waiters: Waiter[] = [];

  add(entry: Entry): void {
    this.entries.push(entry);
    const ready = this.waiters.filter((waiter) => this.entries.length >= waiter.count);
    this.waiters = this.waiters.filter((waiter) => this.entries.length < waiter.count);
    for (const waiter of ready) waiter.resolve();
  }

  /** Resolves with the first `count` entries once there are that many; rejects after `timeoutMs`. */
  waitFor(count: number, timeoutMs: number, what: string): Promise<readonly Entry[]> {
    if (this.entries.length >= count) return Promise.resolve(this.entries.slice(0, count));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        count,
        resolve: () => {
          clearTimeout(timer);
          resolve(this.entries.slice(0, count));
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((other) => other !== waiter);
        reject(new Error(`${what} saw ${this.entries.length} of ${count} requests within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }
}

interface Jwt {
  readonly header: Record<string, unknown>;
  readonly claims: Record<string, unknown>;
}

/** Decodes a compact JWS and checks its signature with `key`; null when malformed or forged. */
function verifiedJwt(token: string, algorithm: 'ES256' | 'RS256', key: KeyObject): Jwt | null {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  const [headerPart, claimsPart, signaturePart] = parts as [string, string, string];
  try {
    const header: unknown = JSON.parse(Buffer.from(headerPart, 'base64url').toString('utf8'));
    const claims: unknown = JSON.parse(Buffer.from(claimsPart, 'base64url').toString('utf8'));
    if (!isRecord(header) || !isRecord(claims) || header.alg !== algorithm) return null;
    const signed = Buffer.from(`${headerPart}.${claimsPart}`);
    const signature = Buffer.from(signaturePart, 'base64url');
    // JWS ES256 signatures are r||s (IEEE P1363), not DER.
    const valid = algorithm === 'ES256'
      ? verify('sha256', signed, { key, dsaEncoding: 'ieee-p1363' }, signature)
      : verify('sha256', signed, key, signature);
    return valid ? { header, claims } : null;
  } catch {
    return null;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function portOf(server: { address(): AddressInfo | string | null }): number {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('fake is not listening');
  return address.port;
}

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
    waitForRequests: (count, timeoutMs = 5000) => log.waitFor(count, timeoutMs, 'fake FCM'),
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
