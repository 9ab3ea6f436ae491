import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import { StartupError } from '../errors.js';
import type { Logger } from '../log.js';
import { allowedHostsOf } from '../services/webpush-subscription.js';
import { loadVapidKeys } from './vapid.js';
import type { ServiceAccount } from './fcm.js';
import type { PushPlatforms } from '../storage/ports/push.js';
import type { PushPlatform, PushProvider } from './types.js';

/** The configured providers by platform; a platform without configuration has none. */
export type Providers = ReadonlyMap<PushPlatform, PushProvider>;

/**
 * Builds the providers the configuration enables, checking their key files
 * first: a bad key stops start-up with a message naming the key, instead of
 * failing at the first notification. The client libraries (firebase-admin is
 * large) load only for a configured provider.
 */
export async function createProviders(config: Pick<Config, 'apns' | 'fcm' | 'push' | 'webpush' | 'storage'>, log?: Logger): Promise<Providers> {
  const providers = new Map<PushPlatform, PushProvider>();
  const timeout = config.push.request_timeout_ms;
  const apns = config.apns;
  if (apns.key_file !== '') {
    for (const key of ['key_id', 'team_id', 'bundle_id'] as const) {
      if (apns[key].trim() === '') throw new StartupError(`apns.${key} is required when apns.key_file is set (see docs/push.md)`);
    }
    const { ApnsProvider } = await import('./apns.js');
    providers.set(
      'apns',
      new ApnsProvider({
        key: readApnsKey(apns.key_file),
        keyId: apns.key_id,
        teamId: apns.team_id,
        bundleId: apns.bundle_id,
        production: apns.environment === 'production',
        connectTo: parseHostPort('apns.connect_to', apns.connect_to),
        requestTimeoutMs: timeout,
      }),
    );
  } else if (apns.key_id !== '' || apns.team_id !== '') {
    throw new StartupError('apns.key_file is required when apns.key_id or apns.team_id is set (or leave all three empty to turn APNs off)');
  }
  const fcm = config.fcm;
  if (fcm.service_account_file !== '') {
    const { FcmProvider } = await import('./fcm.js');
    providers.set(
      'fcm',
      new FcmProvider({
        serviceAccountFile: fcm.service_account_file,
        serviceAccount: readServiceAccount(fcm.service_account_file),
        connectTo: parseHostPort('fcm.connect_to', fcm.connect_to),
        log,
        requestTimeoutMs: timeout,
      }),
    );
  }
  if (config.webpush.enabled) providers.set('webpush', await createWebPush(config, log));
  return providers;
}

/**
 * Web Push is on by default: it needs no account anywhere, only a VAPID key
 * pair, made at the first start in the data directory when webpush.vapid_file
 * names none.
 */
async function createWebPush(config: Pick<Config, 'push' | 'webpush' | 'storage'>, log: Logger | undefined): Promise<PushProvider> {
  const subject = config.webpush.subject.trim() === '' ? `mailto:chatd@${hostname()}` : config.webpush.subject.trim();
  if (!/^(mailto:|https:\/\/)\S+$/.test(subject)) {
    throw new StartupError(`webpush.subject must be a mailto: or https: URL push services can reach you at, got ${JSON.stringify(subject)}`);
  }
  const { keys, path, made } = loadVapidKeys(config.webpush.vapid_file, resolve(config.storage.dir));
  if (made) log?.info({ file: path }, 'made the VAPID key pair for Web Push; back it up with the data directory');
  // Each node would otherwise make its own pair, and push services refuse a subscription's notifications signed by another.
  if (made && config.storage.url !== '') {
    log?.warn({ file: path }, 'with several nodes, every node needs the same VAPID key pair: copy this file to each and set webpush.vapid_file (docs/push.md)');
  }
  const { WebPushProvider } = await import('./webpush.js');
  return new WebPushProvider({ vapid: keys, subject, allowedHosts: allowedHostsOf(config.webpush.allowed_hosts), requestTimeoutMs: config.push.request_timeout_ms });
}

/** Which platforms have a provider: devices registered with another get nothing queued. */
export function platformsOf(providers: Providers): PushPlatforms {
  return { apns: providers.has('apns'), fcm: providers.has('fcm'), webpush: providers.has('webpush') };
}

/** The VAPID public key browsers subscribe with, when Web Push is on (GET /v1/push/webpush). */
export function webPushPublicKey(providers: Providers): string | undefined {
  const provider = providers.get('webpush') as (PushProvider & { readonly publicKey?: string }) | undefined;
  return provider?.publicKey;
}

function readFile(key: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new StartupError(`${key}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
}

function readApnsKey(path: string): string {
  const pem = readFile('apns.key_file', path);
  try {
    const key = createPrivateKey(pem);
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new Error('not a P-256 key');
  } catch (error) {
    throw new StartupError(`apns.key_file: ${path} is not an APNs token key (a .p8 file holding a P-256 private key): ${(error as Error).message}`);
  }
  return pem;
}

function readServiceAccount(path: string): ServiceAccount {
  const text = readFile('fcm.service_account_file', path);
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new StartupError(`fcm.service_account_file: ${path} is not JSON; download the key from the Firebase console (Project settings → Service accounts)`);
  }
  const field = (name: string): string => {
    const value = parsed[name];
    if (typeof value !== 'string' || value === '') throw new StartupError(`fcm.service_account_file: ${path} has no "${name}"; is it a service account key?`);
    return value;
  };
  const account = { projectId: field('project_id'), clientEmail: field('client_email'), privateKey: field('private_key') };
  try {
    createPrivateKey(account.privateKey);
  } catch (error) {
    throw new StartupError(`fcm.service_account_file: the private_key in ${path} does not load: ${(error as Error).message}`);
  }
  return account;
}

function parseHostPort(key: string, value: string): { host: string; port: number } | undefined {
  if (value === '') return undefined;
  const match = /^(.+):(\d{1,5})$/.exec(value);
  const port = Number(match?.[2]);
  if (!match?.[1] || port < 1 || port > 65535) throw new StartupError(`${key} must be host:port, got ${JSON.stringify(value)}`);
  return { host: match[1], port };
}
