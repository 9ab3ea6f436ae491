import type { ErrorCode } from '../errors.js';
import { ClientError } from './errors.js';

/**
 * The attachment endpoints' HTTP plumbing (docs/attachments.md): the device
 * token as a Bearer header (never in a URL), the server's JSON errors as
 * ClientErrors, a dropped connection as a retryable `network` error, a
 * cancel as `aborted`. Uses the global `fetch`.
 */
export class AttachmentHttp {
  readonly base: string;

  constructor(
    server: string,
    private readonly token: string,
  ) {
    this.base = server.replace(/\/+$/, '');
  }

  /** An absolute URL for a path the server gave (relative, like `/v1/uploads/abc`). */
  absolute(path: string): string {
    return new URL(path, `${this.base}/`).href;
  }

  /** Any HTTP answer (errors too: the caller reads them with `error`); rejects only when there is none. */
  async request(method: string, path: string, init: { headers?: Record<string, string>; body?: Uint8Array; signal?: AbortSignal | undefined } = {}): Promise<Response> {
    if (init.signal?.aborted) throw aborted();
    try {
      return await fetch(this.absolute(path), {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...init.headers },
        // A subarray of a larger buffer is sent as itself (fetch copies the view, not the whole buffer).
        ...(init.body ? { body: init.body as Uint8Array<ArrayBuffer> } : {}),
        ...(init.signal ? { signal: init.signal } : {}),
      });
    } catch (error) {
      if (init.signal?.aborted) throw aborted();
      throw new ClientError('network', `${method} ${path}: cannot reach ${this.base}: ${(error as Error).message}`, true);
    }
  }

  /** The server's error answer as a ClientError (429 and 5xx retryable). */
  async error(method: string, path: string, response: Response): Promise<ClientError> {
    const text = await response.text().catch(() => '');
    let body: { error?: { code?: ErrorCode; message?: string } } | undefined;
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      body = undefined;
    }
    const retryAfter = Number(response.headers.get('retry-after'));
    return new ClientError(
      body?.error?.code ?? (response.status === 404 ? 'not_found' : 'internal'),
      body?.error?.message ?? `${method} ${path}: HTTP ${response.status}`,
      response.status === 429 || response.status >= 500,
      response.status,
      Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined,
    );
  }

  async json<T>(method: string, path: string, signal?: AbortSignal): Promise<T> {
    const response = await this.request(method, path, { signal });
    if (!response.ok) throw await this.error(method, path, response);
    try {
      return (await response.json()) as T;
    } catch {
      throw new ClientError('bad_reply', `${method} ${path}: HTTP ${response.status}, not JSON`, false, response.status);
    }
  }
}

export function aborted(): ClientError {
  return new ClientError('aborted', 'cancelled', false);
}

/** Waits `ms`, or rejects with `aborted` as soon as the signal fires. */
export function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(aborted());
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', cancel);
      resolve();
    }, ms);
    function cancel(): void {
      clearTimeout(timer);
      reject(aborted());
    }
    signal?.addEventListener('abort', cancel, { once: true });
  });
}
