import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import tls from 'node:tls';

/*
 * Stand-ins for the two push providers, spoken to over their real protocols so
 * that the real client libraries (@parse/node-apn, firebase-admin) can be
 * pointed at them:
 *
 * - APNs: HTTP/2 over TLS, `POST /3/device/<token>`, ES256 provider tokens.
 *   node-apn reaches it with the provider options `address: 'localhost'`,
 *   `port` and `ca: [pki.caFile]`.
 * - FCM: HTTP/1.1 over TLS, the OAuth2 token endpoint that a service-account
 *   credential calls (`POST https://oauth2.googleapis.com/token`) and
 *   `POST https://fcm.googleapis.com/v1/projects/<project>/messages:send`.
 *   firebase-admin has no endpoint option: it reaches the fake through
 *   `redirectingAgent`, passed both to `cert(path, agent)` and as the app's
 *   `httpAgent`.
 *
 * Both listen on 127.0.0.1, port 0, with a certificate from `makeTestPki`.
 */


// ---------------------------------------------------------------------------
// Keys and certificates

export interface TestPki {
  /** PEM of the test CA that signed `certFile`; clients must trust it. */
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** An APNs auth key: P-256, PKCS#8 PEM, as Apple's .p8 files are. */
  readonly apnsKeyFile: string;
}

/**
 * Names the server certificate answers for. localhost and 127.0.0.1 for
 * node-apn's `address`; the Google hosts because firebase-admin's requests keep
 * their real host names (SNI and Host) while the agent dials the fake:
 * google-auth-library 10 (used by firebase-admin 13's service-account
 * credential) posts to https://oauth2.googleapis.com/token. The Apple hosts let
 * a redirecting connection keep node-apn's default address too.
 */
export const TEST_CERT_HOSTS: readonly string[] = [
  'localhost',
  'fcm.googleapis.com',
  'oauth2.googleapis.com',
  'accounts.google.com',
  'www.googleapis.com',
  'api.push.apple.com',
  'api.sandbox.push.apple.com',
];

/** Makes a test CA, a server certificate it signs and an APNs key in `dir`, with the openssl CLI. */
export function makeTestPki(dir: string): TestPki {
  const file = (name: string): string => join(dir, name);
  const openssl = (...args: string[]): void => {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  };
  const ecKey = (path: string): void =>
    openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path);

  writeFileSync(file('ca.cnf'), [
    '[req]', 'distinguished_name = dn', 'prompt = no', 'x509_extensions = ca_ext',
    '[dn]', 'CN = chatd test CA',
    '[ca_ext]',
    'basicConstraints = critical, CA:TRUE',
    'keyUsage = critical, keyCertSign, cRLSign',
    'subjectKeyIdentifier = hash',
    '',
  ].join('\n'));
  writeFileSync(file('server.cnf'), [
    '[req]', 'distinguished_name = dn', 'prompt = no',
    '[dn]', 'CN = localhost',
    '[server_ext]',
    'basicConstraints = critical, CA:FALSE',
    'keyUsage = critical, digitalSignature',
    'extendedKeyUsage = serverAuth',
    'authorityKeyIdentifier = keyid',
    `subjectAltName = IP:127.0.0.1, ${TEST_CERT_HOSTS.map((host) => `DNS:${host}`).join(', ')}`,
    '',
  ].join('\n'));

  ecKey(file('ca-key.pem'));
  openssl('req', '-x509', '-new', '-config', file('ca.cnf'), '-key', file('ca-key.pem'),
    '-days', '2', '-out', file('ca.pem'));
  ecKey(file('server-key.pem'));
  openssl('req', '-new', '-config', file('server.cnf'), '-key', file('server-key.pem'), '-out', file('server.csr'));
  openssl('x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca-key.pem'),
    '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '2',
    '-extfile', file('server.cnf'), '-extensions', 'server_ext', '-out', file('server.pem'));
  ecKey(file('apns-key.p8'));

  return {
    caFile: file('ca.pem'),
    certFile: file('server.pem'),
    keyFile: file('server-key.pem'),
    apnsKeyFile: file('apns-key.p8'),
  };
}

/** The token endpoint of Google's OAuth2 service, as service-account files name it. */
export const GOOGLE_TOKEN_URI = 'https://oauth2.googleapis.com/token';

/**
 * Writes a service-account JSON file with a freshly made RSA key, as the
 * Firebase console hands out, and returns its path. `name` tells apart several
 * accounts in one directory.
 */
export function serviceAccountJson(dir: string, projectId: string, name = 'service-account'): string {
  const { privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify({
    type: 'service_account',
    project_id: projectId,
    private_key_id: randomBytes(20).toString('hex'),
    private_key: privateKey,
    client_email: `${name}@${projectId}.iam.gserviceaccount.com`,
    client_id: String(100_000_000_000_000_000_000n + BigInt(randomBytes(4).readUInt32BE())),
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: GOOGLE_TOKEN_URI,
    auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
    client_x509_cert_url: `https://www.googleapis.com/robot/v1/metadata/x509/${name}`,
    universe_domain: 'googleapis.com',
  }, null, 2));
  return path;
}

/**
 * An agent that dials `host:port` whatever host a request names, keeping that
 * name for SNI and certificate checks, so a library with fixed URLs can be sent
 * to a fake. With `caFile` it trusts only that CA; without, the usual roots
 * (plus NODE_EXTRA_CA_CERTS).
 */
export function redirectingAgent(host: string, port: number, caFile?: string): https.Agent {
  const ca = caFile === undefined ? undefined : readFileSync(caFile);
  const agent = new https.Agent({ keepAlive: true, ...(ca === undefined ? {} : { ca }) });
  agent.createConnection = (options) => {
    const { servername, host: namedHost } = options as tls.ConnectionOptions;
    return tls.connect({
      ...(options as tls.ConnectionOptions),
      host,
      port,
      servername: servername ?? namedHost ?? undefined,
    });
  };
  return agent;
}
