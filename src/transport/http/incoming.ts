import { ChatError } from '../../errors.js';
import { errorResponse } from './respond.js';

/**
 * Turning what a socket library read into a web-standard Request — the one
 * place both transports do it, because `new Request` and `Headers` throw on
 * input that any client can send (TRACE, a `*` target, a header byte above
 * Latin-1), and a throw there used to end the process. Whatever arrives gets
 * a Request or an HTTP error to send back; never an exception.
 */

/** Every method a chatd route uses. Anything else is refused before routing, with 405 and this list. */
export const SERVED_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

export interface IncomingHead {
  readonly method: string;
  /** The request target as sent: origin-form (`/path?query`), absolute-form (`http://host/path`) or `*`. */
  readonly target: string;
  readonly headers: Iterable<readonly [string, string]>;
}

export type Incoming = { readonly ok: true; readonly request: Request } | { readonly ok: false; readonly response: Response };

/** The checks that need no body, so that a refused request is answered before its body is read. */
export function checkHead(head: IncomingHead): Response | undefined {
  if (!(SERVED_METHODS as readonly string[]).includes(head.method)) {
    const method = head.method.replace(/[^\x21-\x7e]/g, '?').slice(0, 32);
    return errorResponse(new ChatError('method_not_allowed', `chatd does not serve ${method} requests; it serves ${SERVED_METHODS.join(', ')}`), {
      allow: SERVED_METHODS.join(', '),
    });
  }
  if (requestPath(head.target) === undefined) {
    return errorResponse(new ChatError('bad_request', 'the request target must be a path that starts with "/" (or an absolute http URL)'));
  }
  return undefined;
}

/**
 * The Request for a head that checkHead passed (the transports call it first, before reading a body).
 * `body` is the whole body, or a stream of it for a route that streams (TransportOptions.streamsBody).
 */
export function toRequest(head: IncomingHead, body: Uint8Array | ReadableStream<Uint8Array> | undefined): Incoming {
  const path = requestPath(head.target);
  if (path === undefined) return { ok: false, response: errorResponse(new ChatError('bad_request', 'the request target is not a path')) };
  const headers = new Headers();
  for (const [name, value] of head.headers) {
    try {
      headers.append(name, latin1(value));
    } catch {
      const shown = name.replace(/[^\x21-\x7e]/g, '?').slice(0, 64);
      return { ok: false, response: errorResponse(new ChatError('bad_request', `the request header "${shown}" is not a valid HTTP header`)) };
    }
  }
  try {
    // A stream body needs duplex 'half' (the only value fetch knows): the body is read while the answer is made.
    const request = new Request(`http://localhost${path}`, { method: head.method, headers, ...(body ? { body, duplex: 'half' } : {}) });
    return { ok: true, request };
  } catch {
    return { ok: false, response: errorResponse(new ChatError('bad_request', 'the request target is not a valid URL path')) };
  }
}

/** The path and query of an origin-form or absolute-form target (RFC 9112 §3.2: servers accept both), or undefined. */
function requestPath(target: string): string | undefined {
  if (target.startsWith('/')) return target;
  if (!/^https?:\/\//i.test(target)) return undefined;
  try {
    const url = new URL(target);
    return `${url.pathname}${url.search}`;
  } catch {
    return undefined;
  }
}

/**
 * Header values are bytes; Headers accepts only characters up to U+00FF. Node's
 * parser already maps each byte to one such character. uWS decodes them as
 * UTF-8, so a `✓` (or a raw 0xE9 it turned into U+FFFD) is mapped back to its
 * UTF-8 bytes, one character each, as Node would have read them.
 */
function latin1(value: string): string {
  // eslint-disable-next-line no-control-regex
  return /[^\u0000-\u00ff]/.test(value) ? Buffer.from(value, 'utf8').toString('latin1') : value;
}
