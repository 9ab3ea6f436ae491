import type { Logger } from 'pino';
import { ChatError, isChatError, unavailableError } from '../../errors.js';
import type { HttpContext, HttpHandler } from '../types.js';
import { clientAddress } from '../client-address.js';
import { errorResponse } from './respond.js';

export interface RequestContext {
  /** The client's address: the socket's, or the last X-Forwarded-For hop when http.trust_proxy is on. */
  readonly clientAddress: string;
  /** Values of :name segments in the route's path. */
  readonly params: Readonly<Record<string, string>>;
}

export type RouteHandler = (request: Request, context: RequestContext) => Promise<Response> | Response;

interface Route {
  readonly method: string;
  readonly segments: readonly string[];
  readonly handler: RouteHandler;
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

  add(method: string, path: string, handler: RouteHandler): this {
    this.routes.push({ method, segments: path.split('/').filter(Boolean), handler });
    return this;
  }

  readonly handle: HttpHandler = async (request: Request, context: HttpContext): Promise<Response> => {
    const path = new URL(request.url).pathname;
    const segments = path.split('/').filter(Boolean);
    const allowed: string[] = [];
    try {
      for (const route of this.routes) {
        const params = match(route.segments, segments);
        if (!params) continue;
        if (route.method !== request.method && !(route.method === 'GET' && request.method === 'HEAD')) {
          allowed.push(route.method);
          continue;
        }
        return await route.handler(request, { clientAddress: this.clientAddress(request, context), params });
      }
      if (allowed.length > 0) {
        return errorResponse(new ChatError('method_not_allowed', `${request.method} is not allowed on ${path}; use ${allowed.join(' or ')}`), {
          allow: allowed.join(', '),
        });
      }
      return errorResponse(new ChatError('not_found', `no such endpoint: ${request.method} ${path}`));
    } catch (error) {
      if (isChatError(error)) return errorResponse(error);
      const unavailable = unavailableError(error);
      if (unavailable) {
        this.log.warn({ err: error, method: request.method, path }, 'request failed: an engine is unavailable');
        return errorResponse(unavailable);
      }
      this.log.error({ err: error, method: request.method, path }, 'request failed');
      return errorResponse(new ChatError('internal', 'internal server error; the server log has the details'));
    }
  };

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
