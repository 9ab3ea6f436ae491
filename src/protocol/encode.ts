import { ChatError, ErrorCodes } from '../errors.js';
import type { RequestId, ServerFrame } from './frames.js';

export function encodeFrame(frame: ServerFrame): string {
  return JSON.stringify(frame);
}

export function errorFrame(id: RequestId | null, error: ChatError): ServerFrame {
  const retryAfter = error.retryAfterSeconds === undefined ? {} : { retry_after_ms: error.retryAfterSeconds * 1000 };
  const field = error.field === undefined ? {} : { field: error.field };
  return {
    type: 'error',
    id,
    error: { ...error.details, code: error.code, message: error.message, retryable: ErrorCodes[error.code].retryable, ...retryAfter, ...field },
  };
}
