import { type ECDH, createECDH, createPublicKey, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import { createRequire } from 'node:module';
import { type SelfSigned, selfSigned } from './tls.js';
import { Answers, RequestLog, portOf, verifiedJwt } from './push-fake-shared.js';

/*
 * A Web Push service (RFC 8030) on 127.0.0.1 over HTTPS with a self-signed
 * certificate, as a browser vendor's push service would be: it takes
 * `POST /push/<id>` for subscriptions it made, checks the VAPID signature
 * (RFC 8292: `Authorization: vapid t=<JWT>, k=<public key>`, an ES256 JWT
 * whose aud is this origin), decrypts the body (RFC 8291, aes128gcm) with the
 * private key of the "browser" that subscribed, and records what it got. It
 * answers 201, or whatever a test asks for per subscription (410, 404, 429
 * with Retry-After, 500, 403…). The server under test trusts the certificate
 * through NODE_EXTRA_CA_CERTS = `certFile`.
 */

// http_ece has no types; this is the one call used.
const ece = createRequire(import.meta.url)('http_ece') as {
  decrypt(buffer: Buffer, params: { version: 'aes128gcm'; privateKey: ECDH; authSecret: string }): Buffer;
};

/** A browser's subscription and the secrets only the browser holds. */
export interface TestBrowser {
  readonly id: string;
  /** What PushSubscription.toJSON() gives, to register as the token. */
  readonly subscription: { readonly endpoint: string; readonly keys: { readonly p256dh: string; readonly auth: string } };
  /** The token a client registers: the subscription's JSON. */
  readonly token: string;
}

export interface PushDelivery {
  readonly browserId: string;
  readonly ttl: number;
  readonly urgency: string | undefined;
  readonly topic: string | undefined;
  readonly contentEncoding: string | undefined;
  /** The VAPID key the request was signed with (`k=`), and the JWT's claims; the signature and aud were checked. */
  readonly vapidKey: string;
  readonly claims: Record<string, unknown>;
  /** The decrypted payload, parsed. */
  readonly payload: any;
  /** The plaintext exactly as decrypted. */
  readonly plaintext: string;
  /** The status this service answered. */
  readonly status: number;
  /** When it was received (Date.now()). */
  readonly at: number;
}

export interface PushReply {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
}

interface Subscriber {
  readonly ecdh: ECDH;
  readonly auth: string;
  readonly answers: Answers<PushDelivery, PushReply>;
}

export class PushService {
  readonly deliveries = new RequestLog<PushDelivery>();
  /** Requests refused before decryption (bad VAPID, unknown subscription), with why. */
  readonly refusals: string[] = [];
  private readonly subscribers = new Map<string, Subscriber>();
  private count = 0;

  private constructor(
    private readonly server: https.Server,
    readonly cert: SelfSigned,
  ) {}

  static async start(dir: string): Promise<PushService> {
    const cert = selfSigned(dir, `push-service-${randomBytes(4).toString('hex')}`);
    const server = https.createServer({ cert: cert.pem, key: readFileSync(cert.keyFile) });
    const service = new PushService(server, cert);
    server.on('request', (request: IncomingMessage, response: ServerResponse) => void service.handle(request, response));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return service;
  }

  get origin(): string {
    return `https://127.0.0.1:${portOf(this.server)}`;
  }

  /** The file the server under test must trust (NODE_EXTRA_CA_CERTS). */
  get certFile(): string {
    return this.cert.certFile;
  }

  /** A new browser subscription at this service: a P-256 key pair and a 16-byte auth secret, as a browser makes them. */
  browser(): TestBrowser {
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const auth = randomBytes(16).toString('base64url');
    const id = `sub${++this.count}-${randomBytes(6).toString('hex')}`;
    this.subscribers.set(id, { ecdh, auth, answers: new Answers() });
    const subscription = { endpoint: `${this.origin}/push/${id}`, keys: { p256dh: ecdh.getPublicKey('base64url', 'uncompressed'), auth } };
    return { id, subscription, token: JSON.stringify(subscription) };
  }

  /** What to answer this browser's next requests (a queue used up in order, then 201), or a function of each delivery. */
  answer(browser: TestBrowser, replies: readonly PushReply[] | ((delivery: PushDelivery) => PushReply | undefined)): void {
    this.subscribers.get(browser.id)?.answers.set(replies);
  }

  /** The first `count` deliveries (to any browser), once there are that many. */
  waitForDeliveries(count: number, timeoutMs = 15_000): Promise<readonly PushDelivery[]> {
    return this.deliveries.waitFor(count, timeoutMs, 'the push service');
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const refuse = (status: number, why: string): void => {
      this.refusals.push(why);
      response.writeHead(status, { 'content-type': 'text/plain' }).end(why);
    };
    const id = /^\/push\/([\w-]+)$/.exec(request.url ?? '')?.[1];
    const subscriber = id === undefined ? undefined : this.subscribers.get(id);
    if (request.method !== 'POST' || !id || !subscriber) return refuse(404, `no subscription at ${request.method} ${request.url}`);
    const vapid = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(request.headers.authorization ?? '');
    if (!vapid) return refuse(401, `no VAPID authorization: ${request.headers.authorization}`);
    const [, jwt, key] = vapid as unknown as [string, string, string];
    let claims: Record<string, unknown>;
    try {
      const point = Buffer.from(key, 'base64url');
      const publicKey = createPublicKey({
        key: { kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33, 65).toString('base64url') },
        format: 'jwk',
      });
      const verified = verifiedJwt(jwt, 'ES256', publicKey);
      if (!verified) return refuse(401, 'VAPID JWT signature does not verify with k');
      claims = verified.claims;
    } catch (error) {
      return refuse(401, `VAPID key unreadable: ${String(error)}`);
    }
    if (claims.aud !== this.origin) return refuse(403, `VAPID aud ${String(claims.aud)} is not ${this.origin}`);
    if (typeof claims.exp !== 'number' || claims.exp * 1000 < Date.now()) return refuse(403, 'VAPID JWT expired');
    let plaintext: string;
    try {
      plaintext = ece.decrypt(body, { version: 'aes128gcm', privateKey: subscriber.ecdh, authSecret: subscriber.auth }).toString('utf8');
    } catch (error) {
      return refuse(400, `cannot decrypt: ${String(error)}`);
    }
    const header = (name: string): string | undefined => {
      const value = request.headers[name];
      return Array.isArray(value) ? value[0] : value;
    };
    const partial = {
      browserId: id,
      ttl: Number(header('ttl')),
      urgency: header('urgency'),
      topic: header('topic'),
      contentEncoding: header('content-encoding'),
      vapidKey: key,
      claims,
      payload: JSON.parse(plaintext) as unknown,
      plaintext,
      at: Date.now(),
    };
    const reply = subscriber.answers.next({ ...partial, status: 0 }) ?? { status: 201 };
    this.deliveries.add({ ...partial, status: reply.status });
    response.writeHead(reply.status, { ...(reply.status === 201 ? { location: `${this.origin}/message/${randomBytes(4).toString('hex')}` } : {}), ...reply.headers }).end();
  }
}
