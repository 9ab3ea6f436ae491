import type { AttachmentJson } from '../protocol/frames.js';
import { type AttachmentHttp, aborted, pause } from './attachment-http.js';
import { reconnectDelay } from './backoff.js';
import { ClientError } from './errors.js';

/**
 * A tus 1.0 client (core + creation + termination) for POST/PATCH/HEAD/DELETE
 * /v1/uploads (docs/attachments.md, "Uploading"). Chunks go one PATCH at a
 * time; only the chunk in flight is held in memory, so a network error, a
 * 5xx or an offset conflict asks the server where it stands (HEAD) and sends
 * on from there — even for a ciphertext that cannot be made again.
 */

/** Bytes read in order, once (the ciphertext of an encrypted upload; a plaintext source read front to back). */
export interface SequentialSource {
  readonly size: number;
  /** The next bytes, `max` at most (exactly `max` unless the end is nearer). */
  read(max: number): Promise<Uint8Array>;
}

export interface TusOptions {
  readonly chunkBytes: number;
  readonly onProgress?: ((sent: number, total: number) => void) | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** Attempts in a row that move nothing forward before the upload fails (with the backoff: about two minutes). */
const ATTEMPTS = 12;
const BACKOFF = { initialDelayMs: 250, maxDelayMs: 15_000 };
const TUS = { 'tus-resumable': '1.0.0' };

/** Uploads `source`; resolves with the server's description of the finished file. A cancel deletes the upload. */
export async function tusUpload(http: AttachmentHttp, source: SequentialSource, metadata: Readonly<Record<string, string>>, options: TusOptions): Promise<AttachmentJson> {
  const path = await create(http, source.size, metadata, options.signal);
  try {
    await send(http, path, source, options);
    const reply = await http.json<{ upload?: { attachment?: AttachmentJson } }>('GET', path, options.signal);
    const attachment = reply.upload?.attachment;
    if (!attachment || typeof attachment.id !== 'string') throw new ClientError('bad_reply', `GET ${path}: the finished upload has no attachment`, false);
    return attachment;
  } catch (error) {
    // Cancelled (or failed for good): what the server holds of it goes now, not when it expires.
    if (error instanceof ClientError && (error.code === 'aborted' || !error.retryable)) {
      await http.request('DELETE', path, { headers: TUS }).catch(() => undefined);
    }
    throw error;
  }
}

async function create(http: AttachmentHttp, size: number, metadata: Readonly<Record<string, string>>, signal: AbortSignal | undefined): Promise<string> {
  const headers = { ...TUS, 'upload-length': String(size), 'upload-metadata': encodeMetadata(metadata) };
  for (let attempt = 0; ; attempt++) {
    let failure: ClientError;
    try {
      const response = await http.request('POST', '/v1/uploads', { headers, signal });
      if (response.status === 201) {
        const location = response.headers.get('location');
        if (!location) throw new ClientError('bad_reply', 'POST /v1/uploads: 201 without a Location', false);
        return new URL(location, `${http.base}/`).pathname;
      }
      failure = await http.error('POST', '/v1/uploads', response);
    } catch (error) {
      if (!(error instanceof ClientError)) throw error;
      failure = error;
    }
    // A refusal (429 included: the app decides whether to wait Retry-After) fails at once; a lost server is retried.
    const lost = failure.code === 'network' || (failure.status !== undefined && failure.status >= 500);
    if (!lost || attempt + 1 >= ATTEMPTS) throw failure;
    await pause(reconnectDelay(attempt, BACKOFF), signal);
  }
}

async function send(http: AttachmentHttp, path: string, source: SequentialSource, options: TusOptions): Promise<void> {
  const total = source.size;
  let offset = 0;
  /** The chunk in flight (from `start`), kept until the server has all of it. */
  let chunk: Uint8Array | undefined;
  let start = 0;
  let failures = 0;
  let lost = false;
  while (offset < total) {
    if (options.signal?.aborted) throw aborted();
    try {
      if (lost) {
        offset = await serverOffset(http, path, options.signal);
        lost = false;
        const end = chunk ? start + chunk.length : offset;
        if (offset < start || offset > Math.max(end, start)) {
          throw new ClientError('bad_reply', `the server holds ${offset} bytes of ${path}, but it had acknowledged ${start}`, false);
        }
        if (chunk && offset === end) chunk = undefined;
        if (offset >= total) break;
      }
      if (!chunk) {
        start = offset;
        chunk = await source.read(Math.min(options.chunkBytes, total - offset));
        if (chunk.length === 0) throw new ClientError('invalid_field', `the file ended at ${offset} of ${total} bytes`, false);
      }
      const response = await http.request('PATCH', path, {
        headers: { ...TUS, 'content-type': 'application/offset+octet-stream', 'upload-offset': String(offset) },
        body: chunk.subarray(offset - start),
        signal: options.signal,
      });
      if (response.status !== 204) {
        const error = await http.error('PATCH', path, response);
        // 409: our offset is not the server's (a PATCH whose answer was lost went through): ask where it is.
        throw response.status === 409 ? new ClientError(error.code, error.message, true, 409) : error;
      }
      const next = Number(response.headers.get('upload-offset'));
      if (!Number.isSafeInteger(next) || next <= offset || next > start + chunk.length) {
        throw new ClientError('bad_reply', `PATCH ${path}: Upload-Offset ${response.headers.get('upload-offset')} after sending from ${offset}`, false);
      }
      offset = next;
      if (offset === start + chunk.length) chunk = undefined;
      failures = 0;
      options.onProgress?.(offset, total);
    } catch (error) {
      if (!(error instanceof ClientError) || !error.retryable) throw error;
      failures++;
      if (failures >= ATTEMPTS) throw error;
      lost = true;
      await pause(error.retryAfterMs ?? reconnectDelay(failures - 1, BACKOFF), options.signal);
    }
  }
}

async function serverOffset(http: AttachmentHttp, path: string, signal: AbortSignal | undefined): Promise<number> {
  const response = await http.request('HEAD', path, { headers: TUS, signal });
  if (response.status !== 200) throw await http.error('HEAD', path, response);
  const offset = Number(response.headers.get('upload-offset'));
  if (!Number.isSafeInteger(offset) || offset < 0) throw new ClientError('bad_reply', `HEAD ${path}: no Upload-Offset`, false);
  return offset;
}

/** tus Upload-Metadata: `key base64(value)` pairs, comma-separated. */
function encodeMetadata(metadata: Readonly<Record<string, string>>): string {
  return Object.entries(metadata)
    .map(([key, value]) => `${key} ${base64(new TextEncoder().encode(value))}`)
    .join(',');
}

function base64(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}
