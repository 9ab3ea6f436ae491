/**
 * What both transports share for bodies that are streamed rather than read
 * whole: request bodies of routes that ask for it (TransportOptions.streamsBody)
 * and responses that declare their length.
 */

/** How a streamed request body fails when the client goes away before sending all of it. */
export class RequestAbortedError extends Error {
  constructor() {
    super('the client closed the connection before the whole request body arrived');
    this.name = 'RequestAbortedError';
  }
}

/**
 * Request bodies queue at most this many bytes between the socket and the handler; past it the
 * transport stops reading the socket until the handler reads (node's own stream adds its 16 KiB).
 */
export const REQUEST_QUEUE_BYTES = 1024 * 1024;

/**
 * The length of a response to stream with backpressure instead of reading it whole first: its
 * Content-Length when it has a body and declares a length above 0 (a download). Undefined for every other
 * response, which the transport buffers as before (small JSON answers).
 */
export function streamedLength(response: Response): number | undefined {
  if (response.body === null) return undefined;
  const declared = response.headers.get('content-length');
  if (declared === null || !/^\d{1,15}$/.test(declared)) return undefined;
  const length = Number(declared);
  return length > 0 ? length : undefined;
}

/**
 * Whether a response is an event stream of unknown length (text/event-stream: /v1/stream): written
 * chunk by chunk as its body yields (chunked transfer encoding, each chunk flushed), only as fast as
 * the client reads, and its body cancelled when the client goes away. Its headers leave with the
 * first non-empty chunk, so a producer that wants them out at once writes something first.
 */
export function isEventStream(response: Response): boolean {
  return response.body !== null && /^text\/event-stream\s*(;|$)/i.test(response.headers.get('content-type') ?? '');
}
