import { AccountApi, type UserJson } from '../../src/client/browser.js';

/** What is kept of a login in localStorage. */
export interface Session {
  readonly token: string;
  readonly user: UserJson;
  readonly deviceId: number;
}

const SESSION_KEY = 'chatd.session';

export function loadSession(): Session | undefined {
  try {
    return JSON.parse(localStorage.getItem(SESSION_KEY) ?? 'null') ?? undefined;
  } catch {
    return undefined;
  }
}

export async function logIn(username: string, password: string): Promise<Session> {
  const api = new AccountApi(location.origin);
  const login = await api.login({ username, password, device_name: `Web (${navigator.platform || 'browser'})`, platform: 'web' });
  const session = { token: login.token, user: login.user, deviceId: login.device.id };
  saveSession(session);
  return session;
}

/** Keeps the login (and the user as last known: a changed display name) for the next visit. */
export function saveSession(session: Session): void {
  localStorage.setItem(SESSION_KEY, JSON.stringify(session));
}

export async function register(username: string, password: string, invite: string | undefined): Promise<Session> {
  await new AccountApi(location.origin).register({ username, password, ...(invite ? { invite } : {}) });
  return logIn(username, password);
}

/** Logout: the browser forgets the login (the client store is cleared by its owner). */
export function forgetSession(): void {
  localStorage.removeItem(SESSION_KEY);
}
