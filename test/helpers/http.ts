/** Small JSON-over-HTTP client for tests. */

export interface JsonResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: any;
}

export async function request(
  url: string,
  options: { method?: string; body?: unknown; token?: string; headers?: Record<string, string>; raw?: string } = {},
): Promise<JsonResponse> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined = options.raw;
  if (options.body !== undefined) {
    headers['content-type'] ??= 'application/json';
    body = JSON.stringify(options.body);
  }
  const response = await fetch(url, { method: options.method ?? (body === undefined ? 'GET' : 'POST'), headers, body });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : null };
}

/** Registers (open registration) and logs in; returns the token and ids. */
export async function signUp(
  baseUrl: string,
  username: string,
  password = 'correct horse',
  device = 'test',
): Promise<{ token: string; userId: number; deviceId: number }> {
  const registered = await request(`${baseUrl}/v1/register`, { body: { username, password } });
  if (registered.status !== 201) throw new Error(`register ${username}: ${registered.status} ${JSON.stringify(registered.body)}`);
  return logIn(baseUrl, username, password, device);
}

export async function logIn(baseUrl: string, username: string, password: string, device = 'test'): Promise<{ token: string; userId: number; deviceId: number }> {
  const login = await request(`${baseUrl}/v1/login`, { body: { username, password, device_name: device, platform: 'cli' } });
  if (login.status !== 201) throw new Error(`login ${username}: ${login.status} ${JSON.stringify(login.body)}`);
  return { token: login.body.token, userId: login.body.user.id, deviceId: login.body.device.id };
}
