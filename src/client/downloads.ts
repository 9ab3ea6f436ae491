import { type AttachmentHttp, aborted } from './attachment-http.js';
import { ClientError } from './errors.js';
import { concat } from './file-crypto.js';

/**
 * GET /v1/attachments/:id[/thumbnail] (Bearer), its body handed to `sink`
 * as it arrives (docs/attachments.md, "Downloading").
 */
export async function fetchAttachment(
  http: AttachmentHttp,
  id: string,
  options: {
    readonly thumbnail?: boolean | undefined;
    readonly range?: { readonly start: number; readonly end?: number } | undefined;
    readonly onProgress?: ((received: number, total: number | undefined) => void) | undefined;
    readonly signal?: AbortSignal | undefined;
  },
  sink: (bytes: Uint8Array) => void,
): Promise<void> {
  const path = `/v1/attachments/${encodeURIComponent(id)}${options.thumbnail ? '/thumbnail' : ''}`;
  const headers: Record<string, string> = {};
  const range = options.range;
  if (range) {
    if (!Number.isSafeInteger(range.start) || range.start < 0 || (range.end !== undefined && (!Number.isSafeInteger(range.end) || range.end < range.start))) {
      throw new ClientError('invalid_field', 'range: start and end are byte offsets, end (inclusive) not before start', false);
    }
    headers.range = `bytes=${range.start}-${range.end ?? ''}`;
  }
  const response = await http.request('GET', path, { headers, signal: options.signal });
  if (!response.ok) throw await http.error('GET', path, response);
  if (range && response.status !== 206 && range.start > 0) throw new ClientError('bad_reply', `GET ${path}: the server ignored the range (HTTP ${response.status})`, false, response.status);
  const length = Number(response.headers.get('content-length'));
  const total = response.headers.has('content-length') && Number.isSafeInteger(length) ? length : undefined;
  const reader = response.body?.getReader();
  let received = 0;
  if (!reader) return;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      received += value.length;
      sink(value);
      options.onProgress?.(received, total);
    }
  } catch (error) {
    reader.cancel().catch(() => undefined);
    if (options.signal?.aborted) throw aborted();
    if (error instanceof ClientError) throw error;
    throw new ClientError('network', `GET ${path}: the download was cut after ${received} bytes: ${(error as Error).message}`, true);
  } finally {
    reader.releaseLock();
  }
  if (total !== undefined && received !== total) throw new ClientError('network', `GET ${path}: ${received} of ${total} bytes arrived`, true);
}

/** Collects a download's bytes. */
export class Collector {
  private readonly parts: Uint8Array[] = [];
  private total = 0;

  readonly push = (bytes: Uint8Array): void => {
    this.parts.push(bytes);
    this.total += bytes.length;
  };

  bytes(): Uint8Array {
    return this.parts.length === 0 ? new Uint8Array(0) : concat(this.parts, this.total);
  }
}
