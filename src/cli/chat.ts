import { chmod, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { homedir, hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { AccountApi, ChatClient, FileStore } from '../client/node.js';
import { Terminal } from './chat-render.js';
import { ChatSession, LoginRefused } from './chat-session.js';
import type { ChatOptions } from './chat-command.js';
import { CliError, EXIT_USAGE } from './common.js';
import { readPassword } from './prompt.js';

/** `<state>.token` (mode 0600): the device's credential and whose and where it is, so --user may be left out. The SDK's FileStore owns `<state>`. */
interface SavedLogin {
  readonly server: string;
  readonly username: string;
  readonly token: string;
}

export async function runChat(options: ChatOptions, serverGiven: boolean): Promise<void> {
  const { server, username, state, saved } = await findLogin(options, serverGiven);
  // Piped input is read by one Terminal from the start: the password is its first line.
  let terminal = process.stdin.isTTY ? undefined : new Terminal(false);
  try {
    let login = saved;
    if (!login) {
      const password = terminal ? await terminal.password() : await readPassword(`Password for ${username} at ${server}: `, { confirm: false });
      login = await logIn(server, username, password);
      await mkdir(dirname(state), { recursive: true, mode: 0o700 });
      await writeFile(`${state}.token`, `${JSON.stringify(login)}\n`, { mode: 0o600 });
      await chmod(`${state}.token`, 0o600); // `mode` applies only when the file is created
    }
    terminal ??= new Terminal(true);
    const store = new FileStore(state);
    // A state with encryption keys stays encrypted: a run without the flag must still read what was sealed to this device.
    const encryption = options.encryption === true || (await hasEncryptionKeys(store));
    const client = new ChatClient({ server: login.server, token: login.token, store, ...(encryption ? { encryption: 'always' as const } : {}) });
    if ((await new ChatSession(client, terminal, login.server, encryption).run()) === 'logout') {
      await store.flush(); // the store's last write is done, so the files below stay deleted
      await Promise.all([`${state}.token`, state, `${state}.tmp`].map((path) => rm(path, { force: true })));
      process.stdout.write('logged out\n');
    }
  } catch (error) {
    if (error instanceof LoginRefused) await rm(`${state}.token`, { force: true });
    throw error;
  } finally {
    terminal?.close();
  }
}

/** Whether this state already holds the device's encryption keys. A state that cannot be read says so when the client loads it. */
async function hasEncryptionKeys(store: FileStore): Promise<boolean> {
  try {
    return (await store.load()).e2e.deviceSecrets !== undefined;
  } catch {
    return false;
  }
}

async function findLogin(options: ChatOptions, serverGiven: boolean): Promise<{ server: string; username: string; state: string; saved?: SavedLogin }> {
  const server = parseServer(options.server);
  const user = options.user ?? (options.state ? undefined : await onlySavedUser(server));
  const state = options.state ?? (user && join(stateDirectory(), `chat-${serverKey(server)}-${safeName(user)}.json`));
  if (!state) throw new CliError(`--user is required: no saved login for ${server}`, EXIT_USAGE);
  const saved = await readLogin(`${state}.token`);
  if (!saved) {
    if (!options.user) throw new CliError(`--user is required: no saved login in ${state}.token`, EXIT_USAGE);
    return { server, username: options.user, state };
  }
  if (options.user && saved.username.toLowerCase() !== options.user.toLowerCase()) throw new CliError(`${state} is ${saved.username}'s; give ${options.user} another --state`, EXIT_USAGE);
  if (serverGiven && parseServer(saved.server) !== server) throw new CliError(`${state} is for ${saved.server}; give ${server} another --state`, EXIT_USAGE);
  return { server: saved.server, username: saved.username, state, saved };
}

/** The server URL without a trailing slash; a usage error unless it is http(s). */
function parseServer(text: string): string {
  const url = URL.canParse(text) ? new URL(text) : undefined;
  if (url?.protocol !== 'http:' && url?.protocol !== 'https:') throw new CliError(`--server must be an http(s) URL like http://localhost:8080, got "${text}"`, EXIT_USAGE);
  return url.href.replace(/\/+$/, '');
}

function stateDirectory(): string {
  return join(process.env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'chatd');
}

function serverKey(server: string): string {
  const url = new URL(server);
  return `${safeName(url.hostname)}_${url.port || (url.protocol === 'https:' ? '443' : '80')}`;
}

/** Usernames are case-insensitive; whatever a file name would not like becomes `_`. */
function safeName(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9._-]/g, '_');
}

/** With neither --user nor --state: the user of the one login saved for this server, if there is exactly one. */
async function onlySavedUser(server: string): Promise<string | undefined> {
  const names = (await readdir(stateDirectory()).catch(() => [])).filter((name) => name.startsWith(`chat-${serverKey(server)}-`) && name.endsWith('.json.token'));
  return names.length === 1 ? (await readLogin(join(stateDirectory(), names[0] as string)))?.username : undefined;
}

async function readLogin(path: string): Promise<SavedLogin | undefined> {
  let value: Partial<SavedLogin> | null;
  try {
    value = JSON.parse(await readFile(path, 'utf8')) as Partial<SavedLogin> | null;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CliError(`cannot read the saved login ${path} (${(error as Error).message}); delete it to log in again`);
  }
  if (typeof value?.server !== 'string' || typeof value.username !== 'string' || typeof value.token !== 'string') {
    throw new CliError(`${path} is not a saved chatd login; delete it to log in again`);
  }
  return { server: value.server, username: value.username, token: value.token };
}

async function logIn(server: string, username: string, password: string): Promise<SavedLogin> {
  try {
    const login = await new AccountApi(server).login({ username, password, device_name: `chatd chat on ${hostname()}`, platform: 'cli' });
    return { server, username: login.user.username, token: login.token };
  } catch (error) {
    throw new CliError(`cannot log in as ${username}: ${(error as Error).message}`);
  }
}
