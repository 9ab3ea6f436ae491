import { CloseCodes } from '../../errors.js';

/**
 * The event-stream encoding of /v1/stream (docs/protocol.md, "The stream transport"): one event per
 * server frame, numbered for Last-Event-ID; comments to keep proxies from timing an idle stream out;
 * a final `close` event with the WebSocket's close code and reason.
 */

const encoder = new TextEncoder();

/** `id: n` and the frame as data lines. JSON has no raw newlines, but a line break would split an SSE field, so any is split into data lines. */
export function frameEvent(id: number, text: string): string {
  return `id: ${id}\ndata: ${text.split(/\r\n|\r|\n/).join('\ndata: ')}\n\n`;
}

/** Written first on every stream response, so that its headers leave at once (the transport sends them with the first chunk). */
export const OPENED = ': stream\n\n';

export const KEEPALIVE = ': keepalive\n\n';

/** The close code's reason name (heartbeat_timeout…), or "closed" for a code outside the catalogue. */
export function closeReasonOf(code: number): string {
  for (const [reason, entry] of Object.entries(CloseCodes)) if (entry.code === code) return reason;
  return 'closed';
}

export function closeEvent(code: number, message: string): string {
  return `event: close\ndata: ${JSON.stringify({ code, reason: closeReasonOf(code), message })}\n\n`;
}

export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}
