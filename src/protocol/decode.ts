import { ChatError } from '../errors.js';
import { isObject } from './fields.js';
import type { ClientFrame, ClientFrameType, RequestId } from './frames.js';

/** A frame that could not be decoded, with the request id when one was readable. */
export class FrameError extends ChatError {
  constructor(
    readonly requestId: RequestId | null,
    error: ChatError,
  ) {
    super(error.code, error.message, error.field === undefined ? {} : { field: error.field });
  }
}

const MAX_ID_LENGTH = 64;

type FieldReaders = { [T in ClientFrameType]: (frame: Record<string, unknown>, id: RequestId) => Extract<ClientFrame, { type: T }> };

const readers: FieldReaders = {
  auth: (frame, id) => ({ type: 'auth', id, token: requireString(frame, 'token', 256) }),
  ping: (_frame, id) => ({ type: 'ping', id }),
};

/**
 * Text → ClientFrame. Pure: checks size, JSON, the request id, the type and
 * each field, and names the bad field in the error. Never throws anything but FrameError.
 */
export function decodeClientFrame(text: string, maxBytes: number): ClientFrame {
  if (Buffer.byteLength(text, 'utf8') > maxBytes) {
    throw new FrameError(null, new ChatError('invalid_frame', `frame is larger than the limit of ${maxBytes} bytes`));
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new FrameError(null, new ChatError('invalid_frame', 'frame is not valid JSON'));
  }
  if (!isObject(value)) throw new FrameError(null, new ChatError('invalid_frame', 'frame must be a JSON object'));
  const id = value.id;
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID_LENGTH) {
    throw new FrameError(null, new ChatError('invalid_field', `id must be a string of 1-${MAX_ID_LENGTH} characters`, { field: 'id' }));
  }
  const type = value.type;
  const reader = typeof type === 'string' && Object.hasOwn(readers, type) ? readers[type as ClientFrameType] : undefined;
  if (!reader) {
    throw new FrameError(id, new ChatError('unknown_type', `unknown frame type ${JSON.stringify(type)}; known: ${Object.keys(readers).join(', ')}`));
  }
  try {
    return reader(value, id);
  } catch (error) {
    throw new FrameError(id, error as ChatError);
  }
}

function requireString(frame: Record<string, unknown>, field: string, maxLength: number): string {
  const value = frame[field];
  if (typeof value !== 'string' || value.length === 0 || value.length > maxLength) {
    throw new ChatError('invalid_field', `${field} must be a string of 1-${maxLength} characters`, { field });
  }
  return value;
}
