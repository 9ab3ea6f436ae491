import https from 'node:https';
import tls from 'node:tls';
import { type App, cert, deleteApp, initializeApp } from 'firebase-admin/app';
import { type Message, type Messaging, getMessaging } from 'firebase-admin/messaging';
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

  constructor(private readonly settings: FcmSettings) {
    const agent = settings.connectTo ? redirectingAgent(settings.connectTo.host, settings.connectTo.port) : undefined;
    const account = settings.serviceAccount;
    this.app = initializeApp(
      {
        credential: cert(settings.serviceAccountFile, agent),
        projectId: account.projectId,
        ...(agent ? { httpAgent: agent } : {}),
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
    const sent = this.messaging.send(message).then(
      (name): PushOutcome => ({ kind: 'sent', id: name }),
      (error: unknown): PushOutcome => classify(error),
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
}

function classify(error: unknown): PushOutcome {
  const code = typeof (error as { code?: unknown })?.code === 'string' ? (error as { code: string }).code : 'unknown';
  const reason = `FCM ${code}: ${(error as Error)?.message ?? String(error)}`;
  if (DEAD_TOKEN_CODES.has(code)) return { kind: 'dead_token', reason };
  // FCM v1 answers a malformed token with INVALID_ARGUMENT, and one of another Firebase project with SENDER_ID_MISMATCH.
  if (code === 'messaging/invalid-argument' && /registration token/i.test(reason)) return { kind: 'dead_token', reason };
  if (code === 'messaging/mismatched-credential') return { kind: 'dead_token', reason };
  if (TRANSIENT_CODES.has(code) || code === 'unknown') return { kind: 'retry', reason };
  return { kind: 'failed', reason };
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
