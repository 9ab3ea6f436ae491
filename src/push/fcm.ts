import { AsyncLocalStorage } from 'node:async_hooks';
import type { ClientRequest, IncomingMessage } from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { type App, cert, deleteApp, initializeApp } from 'firebase-admin/app';
import { type Message, type Messaging, getMessaging } from 'firebase-admin/messaging';
import type { Logger } from '../log.js';
import { suspectDeadToken } from './provider-gate.js';
import type { Notification, PushOutcome, PushProvider, PushTarget } from './types.js';

/** The fields of a service account key file that sending needs. */
export interface ServiceAccount {
  readonly projectId: string;
  readonly clientEmail: string;
  readonly privateKey: string;
}

export interface FcmSettings {
  /** The key file's path: google-auth-library applies the agent only to credentials it reads from a file. */
  readonly serviceAccountFile: string;
  readonly serviceAccount: ServiceAccount;
  /** Instead of Google's hosts (a local test server). */
  readonly connectTo: { readonly host: string; readonly port: number } | undefined;
  readonly requestTimeoutMs: number;
  /** Where the refusals of the project's APNs key are told (at error level, at most once per APNS_KEY_LOG_MS). */
  readonly log?: Logger;
}

const DEAD_TOKEN_CODES = new Set(['messaging/registration-token-not-registered', 'messaging/invalid-registration-token']);
const TRANSIENT_CODES = new Set([
  'messaging/internal-error',
  'messaging/server-unavailable',
  'messaging/message-rate-exceeded',
  'messaging/device-message-rate-exceeded',
  'messaging/unknown-error',
  'app/network-error',
  'app/network-timeout',
]);
/**
 * Refusals of this server whatever the token: our access token refused (a 401
 * UNAUTHENTICATED, which firebase-admin also calls `third-party-auth-error`:
 * see apnsKeyRefused), a 401/403 without a JSON body, an Android package the
 * project does not know.
 */
const PROVIDER_CODES = new Set(['messaging/third-party-auth-error', 'messaging/authentication-error', 'messaging/invalid-package-name']);
/** Codes whose Retry-After (429 quota, 503) holds the whole project, not one token. */
const WAIT_CODES = new Set(['messaging/message-rate-exceeded', 'messaging/server-unavailable']);
/**
 * The token endpoint's answers that mean the service account itself is bad
 * (revoked or deleted key, a clock far off, a file that does not parse); any
 * other failure to fetch an access token (network, timeout, a 5xx) passes.
 */
const BAD_CREDENTIAL = /invalid_grant|invalid_client|unauthorized_client|Failed to parse/i;
/** The APNs key refusal is told at most this often: it comes with every notification to an iOS device. */
const APNS_KEY_LOG_MS = 60 * 60_000;

/**
 * FCM's THIRD_PARTY_AUTH_ERROR ("Auth error from APNS or Web Push Service"):
 * Apple refused the APNs key (or certificate) stored in the Firebase project,
 * so only iOS devices are affected. firebase-admin gives the same code to a
 * bare 401 UNAUTHENTICATED (our access token refused, every device), telling
 * them apart only by the message.
 */
function apnsKeyRefused(code: string, message: string): boolean {
  return code === 'messaging/third-party-auth-error' && /APNS|Web Push/i.test(message);
}

/** Names each firebase-admin app: the library keeps apps in a process-wide registry by name. */
let appCount = 0;

/**
 * FCM HTTP v1 through firebase-admin, one `send()` per token (the batch calls
 * use HTTP/2 and ignore the agent that connect_to needs). The library has no
 * per-request timeout of its own (a hung request can take minutes through its
 * retries), so each send races our own.
 */
export class FcmProvider implements PushProvider {
  readonly platform = 'fcm' as const;
  private readonly app: App;
  private readonly messaging: Messaging;
  /** Each send's own Retry-After (ms), read off its responses: firebase-admin's errors drop the headers. */
  private readonly retryAfter = new AsyncLocalStorage<RetryAfterSeen>();
  /** When the APNs key refusal was last logged (Unix ms). */
  private apnsKeyLoggedAt = -Infinity;

  constructor(private readonly settings: FcmSettings) {
    const redirect = settings.connectTo ? redirectingAgent(settings.connectTo.host, settings.connectTo.port) : undefined;
    const account = settings.serviceAccount;
    this.app = initializeApp(
      {
        credential: cert(settings.serviceAccountFile, redirect),
        projectId: account.projectId,
        // Sends go through this agent (HTTP/1.1): it is where a 429's Retry-After can be seen.
        httpAgent: watchRetryAfter(redirect ?? new https.Agent({ keepAlive: true }), this.retryAfter),
      },
      `chatd-fcm-${++appCount}`,
    );
    this.messaging = getMessaging(this.app);
  }

  async send(target: PushTarget, notification: Notification): Promise<PushOutcome> {
    const ttlMs = Math.max(0, notification.expiresAt - Date.now());
    const message: Message = {
      token: target.token,
      notification: notification.title === undefined ? { body: notification.body } : { title: notification.title, body: notification.body },
      data: { ...notification.data },
      android: {
        collapseKey: notification.collapseKey,
        priority: 'high',
        ttl: ttlMs,
        notification: { tag: notification.collapseKey, notificationCount: notification.badge, sound: 'default' },
      },
      apns: {
        headers: { 'apns-collapse-id': notification.collapseKey, 'apns-expiration': String(Math.ceil(notification.expiresAt / 1000)) },
        payload: { aps: { badge: notification.badge, sound: 'default' } },
      },
    };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<PushOutcome>((resolve) => {
      timer = setTimeout(() => resolve({ kind: 'retry', reason: `FCM: no answer within ${this.settings.requestTimeoutMs} ms` }), this.settings.requestTimeoutMs);
    });
    // The responses to this send (and only those) note their Retry-After here: with several sends at once, another's does not count.
    const seen: RetryAfterSeen = { ms: undefined };
    const sent = this.retryAfter.run(seen, () => this.messaging.send(message)).then(
      (name): PushOutcome => ({ kind: 'sent', id: name }),
      (error: unknown): PushOutcome => {
        const outcome = classify(error, seen.ms);
        if (outcome.kind === 'failed' && apnsKeyRefused(codeOf(error), (error as Error)?.message ?? '')) this.apnsKeyRefused(outcome.reason);
        return outcome;
      },
    );
    try {
      return await Promise.race([sent, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await deleteApp(this.app);
  }

  /** Every iOS device's notification fails while Apple refuses the project's APNs key: said at error level, once an hour. */
  private apnsKeyRefused(reason: string): void {
    const now = Date.now();
    if (now - this.apnsKeyLoggedAt < APNS_KEY_LOG_MS) return;
    this.apnsKeyLoggedAt = now;
    this.settings.log?.error(
      {
        platform: 'fcm',
        reason,
        check: `the APNs authentication key (or certificate) uploaded to the Firebase project ${this.settings.serviceAccount.projectId} (Project settings, Cloud Messaging, Apple app configuration): its key id and team id, not revoked`,
      },
      'push to iOS devices through FCM refused: Apple refuses the APNs key stored in the Firebase project; their notifications fail, Android devices are not affected (said at most once an hour)',
    );
  }
}

function codeOf(error: unknown): string {
  return typeof (error as { code?: unknown })?.code === 'string' ? (error as { code: string }).code : 'unknown';
}

/**
 * What a firebase-admin error means for chatd (exported for the table test).
 * `retryAfterMs`: the Retry-After of the response, when one was seen.
 */
export function classify(error: unknown, retryAfterMs?: number): PushOutcome {
  const code = codeOf(error);
  const message = (error as Error)?.message ?? String(error);
  const reason = `FCM ${code}: ${message}`;
  if (DEAD_TOKEN_CODES.has(code)) return { kind: 'dead_token', reason };
  // FCM v1 answers a malformed token with INVALID_ARGUMENT ("The registration token is not a valid FCM registration token").
  if (code === 'messaging/invalid-argument' && /registration token/i.test(message)) return { kind: 'dead_token', reason };
  if (code === 'messaging/mismatched-credential') {
    // firebase-admin gives this code to a token of another Firebase project (SENDER_ID_MISMATCH, "SenderId mismatch")
    // AND to a bare 403 PERMISSION_DENIED: the FCM API disabled for the project, or the service account lost the
    // permission to send. Only the first is about the token; the second would remove every token.
    // A mismatch for every token means a service account of another project: suspect, for the circuit breaker.
    return /sender ?id mismatch/i.test(message) ? suspectDeadToken(reason) : { kind: 'provider_error', reason };
  }
  // FCM's APNs key for the project refused: iOS devices only, so no pause (Android goes on); this notification fails.
  if (apnsKeyRefused(code, message)) return { kind: 'failed', reason };
  if (PROVIDER_CODES.has(code)) return { kind: 'provider_error', reason };
  // firebase-admin wraps every failure to get an access token in app/invalid-credential, a network blip included.
  if (code === 'app/invalid-credential') return BAD_CREDENTIAL.test(message) ? { kind: 'provider_error', reason } : { kind: 'retry', reason };
  if (TRANSIENT_CODES.has(code) || code === 'unknown') {
    return WAIT_CODES.has(code) && retryAfterMs !== undefined ? { kind: 'retry', reason, retryAfterMs } : { kind: 'retry', reason };
  }
  return { kind: 'failed', reason };
}

interface RetryAfterSeen {
  ms: number | undefined;
}

/**
 * Notes the Retry-After of each 429/503 response that goes through `agent`
 * (and forgets it on any other answer) in the RetryAfterSeen of the send that
 * made the request (`current`, set around each send; the request is made in
 * its async context), for the error that follows: firebase-admin turns the
 * response into an error without its headers.
 */
function watchRetryAfter(agent: https.Agent, current: AsyncLocalStorage<RetryAfterSeen>): https.Agent {
  const withRequests = agent as unknown as { addRequest(request: ClientRequest, options: unknown): void };
  const addRequest = withRequests.addRequest.bind(agent);
  withRequests.addRequest = (request, options) => {
    const seen = current.getStore();
    request.once('response', (response: IncomingMessage) => {
      if (seen) seen.ms = response.statusCode === 429 || response.statusCode === 503 ? parseRetryAfter(response.headers['retry-after'], Date.now()) : undefined;
    });
    addRequest(request, options);
  };
  return agent;
}

/** Retry-After as seconds or an HTTP date, in ms from `now`; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * Dials `host:port` whatever host a request names, keeping that name for SNI
 * and the certificate check: firebase-admin's URLs are fixed, and this is how
 * connect_to reaches another server (trusted through the system's CAs or
 * NODE_EXTRA_CA_CERTS).
 */
function redirectingAgent(host: string, port: number): https.Agent {
  const agent = new https.Agent({ keepAlive: true });
  agent.createConnection = (options) => {
    const named = options as tls.ConnectionOptions;
    return tls.connect({ ...named, host, port, servername: named.servername ?? named.host ?? undefined });
  };
  return agent;
}
