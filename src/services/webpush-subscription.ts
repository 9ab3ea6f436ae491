import { ECDH } from 'node:crypto';
import { ChatError } from '../errors.js';

/**
 * A browser's push subscription, as `PushSubscription.toJSON()` gives it:
 * where to POST (`endpoint`, a push service's URL) and the keys its payloads
 * are encrypted to (RFC 8291: `p256dh` the browser's P-256 public key,
 * `auth` a 16-byte secret).
 */
export interface WebPushSubscription {
  readonly endpoint: string;
  readonly keys: { readonly p256dh: string; readonly auth: string };
}

/** Longest endpoint: push services' URLs are a few hundred characters. */
const MAX_ENDPOINT = 2048;
const BASE64URL = /^[A-Za-z0-9_-]+={0,2}$/;

/**
 * Parses and checks the JSON a client registered as its token, and returns
 * the canonical JSON stored (endpoint and keys only, in a fixed order: the
 * same subscription registered twice is the same token, which is how it
 * moves from a device to another). Every refusal is `invalid_field` on
 * `token`, naming the part at fault. `allowedHosts` is the SSRF guard: the
 * server POSTs to the endpoint, so a host outside it is refused here rather
 * than requested later.
 */
export function parseWebPushSubscription(token: string, allowedHosts: readonly string[]): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(token);
  } catch {
    throw refused('a Web Push token is the JSON of the browser\'s PushSubscription (subscription.toJSON()): {"endpoint": …, "keys": {"p256dh": …, "auth": …}}; this is not JSON');
  }
  if (!isObject(parsed)) throw refused('a Web Push token is a JSON object {"endpoint": …, "keys": {"p256dh": …, "auth": …}}');
  const endpoint = parsed.endpoint;
  if (typeof endpoint !== 'string' || endpoint === '') throw refused('endpoint is required: the push service URL of the browser\'s subscription');
  if (endpoint.length > MAX_ENDPOINT) throw refused(`endpoint is longer than ${MAX_ENDPOINT} characters`);
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw refused('endpoint is not a URL');
  }
  if (url.protocol !== 'https:') throw refused(`endpoint must be an https URL (got ${url.protocol.replace(/:$/, '')})`);
  if (url.username !== '' || url.password !== '') throw refused('endpoint must not carry a user name or password');
  const host = url.hostname.toLowerCase();
  if (!hostAllowed(host, allowedHosts)) {
    throw refused(`endpoint host ${host} is not a push service this server sends to (webpush.allowed_hosts: ${allowedHosts.join(', ') || 'none'})`);
  }
  const keys = parsed.keys;
  if (!isObject(keys)) throw refused('keys is required: {"p256dh": …, "auth": …} from the subscription');
  const p256dh = decodeKey(keys.p256dh, 'keys.p256dh', 65, 'the browser\'s P-256 public key, 65 bytes (uncompressed point)');
  try {
    // A point off the curve would fail every encryption: refuse it now.
    ECDH.convertKey(p256dh, 'prime256v1', undefined, undefined, 'uncompressed');
  } catch {
    throw refused('keys.p256dh is not a point on the P-256 curve');
  }
  decodeKey(keys.auth, 'keys.auth', 16, 'the subscription\'s 16-byte authentication secret');
  const subscription: WebPushSubscription = { endpoint: url.href, keys: { p256dh: stripPadding(keys.p256dh as string), auth: stripPadding(keys.auth as string) } };
  return JSON.stringify(subscription);
}

/** The stored token back as a subscription (it was checked when registered). */
export function webPushSubscriptionOf(token: string): WebPushSubscription {
  return JSON.parse(token) as WebPushSubscription;
}

/** `webpush.allowed_hosts` as a list: comma-separated, lower case, blanks dropped. */
export function allowedHostsOf(setting: string): string[] {
  return setting
    .split(',')
    .map((host) => host.trim().toLowerCase())
    .filter((host) => host !== '');
}

/** Exact names match themselves; `*.example.com` matches any subdomain of example.com (not example.com itself). */
export function hostAllowed(host: string, allowed: readonly string[]): boolean {
  return allowed.some((pattern) => (pattern.startsWith('*.') ? host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1 : host === pattern));
}

function decodeKey(value: unknown, field: string, bytes: number, what: string): Buffer {
  if (typeof value !== 'string' || value === '') throw refused(`${field} is required: ${what}, base64url`);
  // 4/3 of the bytes plus padding: anything longer is not this key.
  if (value.length > Math.ceil(bytes / 3) * 4 || !BASE64URL.test(value)) throw refused(`${field} must be ${what}, base64url`);
  const decoded = Buffer.from(stripPadding(value), 'base64url');
  if (decoded.length !== bytes) throw refused(`${field} must be ${what}, base64url; it decodes to ${decoded.length} bytes`);
  return decoded;
}

function stripPadding(value: string): string {
  return value.replace(/=+$/, '');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function refused(message: string): ChatError {
  return new ChatError('invalid_field', message, { field: 'token' });
}
