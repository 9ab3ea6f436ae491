import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { StartupError } from '../errors.js';

/**
 * A certificate reload closed the listening socket and could bind neither the
 * new server nor the old one again (out of file descriptors, say): the process
 * no longer accepts connections and should stop, so that its supervisor
 * starts it afresh.
 */
export class ListenerLostError extends StartupError {
  constructor(message: string) {
    super(message);
    this.name = 'ListenerLostError';
  }
}

/** PEM files of the certificate chain and its key, as the configuration names them. */
export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

/** What the log says of the certificate in use, so an operator can tell a renewal took. */
export interface CertificateInfo {
  readonly subject: string;
  readonly validTo: string;
  /** SHA-256 of the certificate, as `openssl x509 -noout -fingerprint -sha256` prints it. */
  readonly fingerprint256: string;
}

export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly info: CertificateInfo;
}

/**
 * Reads and checks the pair before any socket uses it: a missing file, a key
 * that is not the certificate's, or a passphrase-protected key is refused with
 * the file named. uWS reads the files again itself and says only "App
 * construction failed", so both transports check here first.
 */
export function readTlsFiles(files: TlsFiles): TlsMaterial {
  const read = (path: string, what: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new StartupError(`cannot read the TLS ${what} ${path} (tls.${what === 'certificate' ? 'cert' : 'key'}): ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
  };
  const cert = read(files.certFile, 'certificate');
  const key = read(files.keyFile, 'key');
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch (error) {
    throw new StartupError(`${files.certFile} (tls.cert) is not a PEM certificate: ${(error as Error).message}`);
  }
  try {
    // Fails when the key is not PEM, needs a passphrase, or does not belong to the certificate.
    createSecureContext({ cert, key });
  } catch (error) {
    throw new StartupError(`the TLS key ${files.keyFile} (tls.key) cannot be used with ${files.certFile}: ${(error as Error).message}`);
  }
  return { cert, key, info: { subject: certificate.subject.replace(/\n/g, ', '), validTo: certificate.validTo, fingerprint256: certificate.fingerprint256 } };
}
