import { type KeyObject, verify } from 'node:crypto';
import type { AddressInfo } from 'node:net';

// ---------------------------------------------------------------------------
// What both fakes share: a log tests can wait on, and programmable answers

/** Answers a test programs: a function of the request (undefined: the default answer) or a queue used up in order. */
export type Responder<Request, Reply> = ((request: Request) => Reply | undefined) | readonly Reply[];

export class Answers<Request, Reply> {
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
export class RequestLog<Entry> {
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

export interface Jwt {
  readonly header: Record<string, unknown>;
  readonly claims: Record<string, unknown>;
}

/** Decodes a compact JWS and checks its signature with `key`; null when malformed or forged. */
export function verifiedJwt(token: string, algorithm: 'ES256' | 'RS256', key: KeyObject): Jwt | null {
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

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

export function portOf(server: { address(): AddressInfo | string | null }): number {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('fake is not listening');
  return address.port;
}
