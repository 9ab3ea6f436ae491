import type { Logger } from 'pino';
import { ChatError, isChatError, unavailableError } from '../../errors.js';
import type { HttpContext, HttpHandler } from '../types.js';
import { clientAddress } from '../client-address.js';
import { RequestAbortedError } from '../streaming.js';
import { errorResponse } from './respond.js';

export interface RequestContext {
  /** The client's address: the socket's, or the last X-Forwarded-For hop when http.trust_proxy is on. */
  readonly clientAddress: string;
  /** Values of :name segments in the route's path. */
  readonly params: Readonly<Record<string, string>>;
}

export type RouteHandler = (request: Request, context: RequestContext) => Promise<Response> | Response;

export interface RouteOptions {
  /**
   * The handler reads the request body itself, as it arrives: `request.body` is a stream fed from
   * the socket with backpressure, http.max_body_bytes does not apply (the handler enforces its own
   * limit), and a client that goes away mid-body errors the stream with RequestAbortedError.
   */
  readonly streamBody?: boolean;
}

interface Route {
  readonly method: string;
  readonly segments: readonly string[];
  readonly handler: RouteHandler;
  readonly streamBody: boolean;
}

/**
 * Method + path routing with :params. An unknown path is 404, a known path
 * with another method 405 with Allow; a ChatError becomes its JSON error, any
 * other exception a logged 500 that tells the client nothing internal.
 */
export class Router {
  private readonly routes: Route[] = [];

  constructor(
    private readonly log: Logger,
    private readonly trustProxy: boolean,
  ) {}

  add(method: string, path: string, handler: RouteHandler, options: RouteOptions = {}): this {
    this.routes.push({ method, segments: path.split('/').filter(Boolean), handler, streamBody: options.streamBody === true });
    return this;
  }

  /**
   * Whether the route that will answer `method` on `target` (a path, with or without a query)
   * streams its request body: what the transport asks before it reads a body (TransportOptions.streamsBody).
   */
  streamsBody(method: string, target: string): boolean {
    let path: string;
    try {
      // As the Request's URL is made (toRequest), so that both see the same path ("//x" is not a host).
      path = new URL(target.startsWith('/') ? `http://localhost${target}` : target).pathname;
    } catch {
      return false;
    }
    return this.find(method, path.split('/').filter(Boolean))?.route?.streamBody === true;
  }

  readonly handle: HttpHandler = async (request: Request, context: HttpContext): Promise<Response> => {
    const path = new URL(request.url).pathname;
    const segments = path.split('/').filter(Boolean);
    try {
      const found = this.find(request.method, segments);
      if (found?.route) return await found.route.handler(request, { clientAddress: this.clientAddress(request, context), params: found.params });
      if (found) {
        return errorResponse(new ChatError('method_not_allowed', `${request.method} is not allowed on ${path}; use ${found.allowed.join(' or ')}`), {
          allow: found.allowed.join(', '),
        });
      }
      return errorResponse(new ChatError('not_found', `no such endpoint: ${request.method} ${path}`));
    } catch (error) {
      if (isChatError(error)) return errorResponse(error);
      if (error instanceof RequestAbortedError) {
        // Nobody is left to read the answer: the transport drops it.
        this.log.debug({ method: request.method, path }, 'the client went away while sending the request body');
        return errorResponse(new ChatError('bad_request', error.message));
      }
      const unavailable = unavailableError(error);
      if (unavailable) {
        this.log.warn({ err: error, method: request.method, path }, 'request failed: an engine is unavailable');
        return errorResponse(unavailable);
      }
      this.log.error({ err: error, method: request.method, path }, 'request failed');
      return errorResponse(new ChatError('internal', 'internal server error; the server log has the details'));
    }
  };

  /**
   * The first route for `method` (GET's answers HEAD) whose path matches; when the path matches only
   * other methods, `allowed` lists them; undefined when no route has this path.
   */
  private find(
    method: string,
    segments: readonly string[],
  ): { readonly route: Route; readonly params: Record<string, string> } | { readonly route?: undefined; readonly allowed: string[] } | undefined {
    const allowed: string[] = [];
    for (const route of this.routes) {
      const params = match(route.segments, segments);
      if (!params) continue;
      if (route.method !== method && !(route.method === 'GET' && method === 'HEAD')) {
        allowed.push(route.method);
        continue;
      }
      return { route, params };
    }
    return allowed.length > 0 ? { allowed } : undefined;
  }

  private clientAddress(request: Request, context: HttpContext): string {
    return clientAddress(context.remoteAddress, request.headers.get('x-forwarded-for'), this.trustProxy);
  }
}

function match(pattern: readonly string[], segments: readonly string[]): Record<string, string> | undefined {
  if (pattern.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const expected = pattern[i] as string;
    const actual = segments[i] as string;
    if (!expected.startsWith(':')) {
      if (expected !== actual) return undefined;
      continue;
    }
    try {
      params[expected.slice(1)] = decodeURIComponent(actual);
    } catch {
      return undefined;
    }
  }
  return params;
}
