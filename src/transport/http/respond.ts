import { ChatError, type ErrorCode } from '../../errors.js';

/** Response builders: every body is JSON, every error has the shape { error: { code, message } }. */

export function json(status: number, data: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(data), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers },
  });
}

export function noContent(): Response {
  return new Response(null, { status: 204, headers: { 'cache-control': 'no-store' } });
}

export function errorResponse(error: ChatError, headers: Record<string, string> = {}): Response {
  const body: { code: ErrorCode; message: string; field?: string } = { code: error.code, message: error.message };
  if (error.field !== undefined) body.field = error.field;
  if (error.retryAfterSeconds !== undefined) headers['retry-after'] = String(error.retryAfterSeconds);
  return json(error.status, { error: body }, headers);
}

/** The answer both transports give to a body over the limit, before any handler runs. */
export function bodyTooLarge(limit: number): Response {
  return errorResponse(new ChatError('payload_too_large', `the request body is larger than the limit of ${limit} bytes (http.max_body_bytes)`), {
    connection: 'close',
  });
}

/** The answer to an exception no handler caught: the details go to the log, never to the client. */
export function internalError(): Response {
  return errorResponse(new ChatError('internal', 'internal server error; the server log has the details'));
}
