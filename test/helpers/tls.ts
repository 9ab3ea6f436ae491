import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';

export interface SelfSigned {
  readonly certFile: string;
  readonly keyFile: string;
  /** The PEM text, to trust it as its own CA. */
  readonly pem: string;
  readonly fingerprint256: string;
}

/** A self-signed P-256 certificate for localhost and 127.0.0.1, made with the openssl CLI; `name` tells certificates apart. */
export function selfSigned(dir: string, name: string): SelfSigned {
  const certFile = join(dir, `${name}.pem`);
  const keyFile = join(dir, `${name}-key.pem`);
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', certFile,
      '-days', '2', '-subj', `/CN=chatd test ${name}`, '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const pem = readFileSync(certFile, 'utf8');
  return { certFile, keyFile, pem, fingerprint256: new X509Certificate(pem).fingerprint256 };
}

/** The SHA-256 fingerprint of the certificate a TLS server at 127.0.0.1:port presents, checked against `ca`. */
export function servedFingerprint(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      resolve(socket.getPeerX509Certificate()?.fingerprint256 ?? '');
      socket.end();
    });
    socket.once('error', reject);
  });
}

/** A JSON request over HTTPS trusting `ca` (fetch cannot be given a CA of its own). */
export function httpsJson(
  url: string,
  ca: string,
  options: { body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: IncomingHttpHeaders; body: any }> {
  const body = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        ca,
        method: body === undefined ? 'GET' : 'POST',
        headers: { ...options.headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text.startsWith('{') ? JSON.parse(text) : text }));
      },
    );
    req.once('error', reject);
    req.end(body);
  });
}

/**
 * A port that was free a moment ago. uWS can bind a reloaded certificate's
 * listener again only on a port it was given (with port 0 the kernel refuses
 * while connections are open), so the reload tests name one.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
