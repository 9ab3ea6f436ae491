import type { ErrorCode } from '../errors.js';
import type { UserJson } from '../protocol/frames.js';
import { ClientError } from './errors.js';

export type Platform = 'ios' | 'android' | 'web' | 'desktop' | 'cli' | 'bot' | 'other';

export interface DeviceJson {
  readonly id: number;
  readonly name: string;
  readonly platform: Platform;
  readonly created_at: number;
  readonly last_seen_at: number | null;
  readonly current: boolean;
}

export interface LoginResult {
  readonly user: UserJson;
  readonly device: { readonly id: number; readonly name: string; readonly platform: Platform };
  /** Shown once: keep it, it is the device's credential for every connection. */
  readonly token: string;
}

/**
 * The HTTP half of the API (README, "HTTP API"): accounts and devices. Uses
 * the global `fetch` (browsers, Node 18+).
 */
export class AccountApi {
  private readonly base: string;

  constructor(
    server: string,
    private readonly token?: string,
  ) {
    this.base = server.replace(/\/+$/, '');
  }

  /** The same API acting as the device that holds `token`. */
  withToken(token: string): AccountApi {
    return new AccountApi(this.base, token);
  }

  register(input: { username: string; password: string; display_name?: string; invite?: string }): Promise<{ user: UserJson }> {
    return this.call('POST', '/v1/register', input);
  }

  login(input: { username: string; password: string; device_name: string; platform: Platform }): Promise<LoginResult> {
    return this.call('POST', '/v1/login', input);
  }

  /** This device's token stops working. */
  async logout(): Promise<void> {
    await this.call('POST', '/v1/logout');
  }

  me(): Promise<{ user: UserJson; device_id: number }> {
    return this.call('GET', '/v1/me');
  }

  /** Changes this user's display name (1-64 characters). */
  updateMe(input: { display_name: string }): Promise<{ user: UserJson; device_id: number }> {
    return this.call('PATCH', '/v1/me', input);
  }

  devices(): Promise<{ devices: DeviceJson[] }> {
    return this.call('GET', '/v1/devices');
  }

  async removeDevice(deviceId: number): Promise<void> {
    await this.call('DELETE', `/v1/devices/${deviceId}`);
  }

  changePassword(input: { current_password: string; new_password: string; revoke_other_devices?: boolean }): Promise<{ revoked_devices: number }> {
    return this.call('POST', '/v1/me/password', input);
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let response: Response;
    try {
      response = await fetch(`${this.base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (error) {
      throw new ClientError('network', `cannot reach ${this.base}: ${(error as Error).message}`, true);
    }
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new ClientError('bad_reply', `${method} ${path}: HTTP ${response.status}, not JSON`, response.status >= 500, response.status);
    }
    if (response.ok) return json as T;
    const error = (json as { error?: { code?: ErrorCode; message?: string } }).error;
    const retryAfter = Number(response.headers.get('retry-after'));
    throw new ClientError(
      error?.code ?? 'internal',
      error?.message ?? `HTTP ${response.status}`,
      response.status === 429 || response.status >= 500,
      response.status,
      Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined,
    );
  }
}
