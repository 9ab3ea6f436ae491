import { type ECDH, createECDH } from 'node:crypto';
import { chmodSync, closeSync, existsSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { StartupError } from '../errors.js';

/** As the data directory's own files (storage/data-directory.ts, which this layer may not import). */
const PRIVATE_FILE_MODE = 0o600;
const PRIVATE_DIRECTORY_MODE = 0o700;

/**
 * A VAPID key pair (RFC 8292): the P-256 key this server signs its Web Push
 * requests with. Browsers subscribe with the public key, and a push service
 * refuses requests signed by any other: the pair must outlive restarts and be
 * the same on every node, or every subscription stops working.
 */
export interface VapidKeys {
  /** base64url of the uncompressed public point (65 bytes), as `pushManager.subscribe` takes it. */
  readonly publicKey: string;
  /** base64url of the 32-byte private scalar. */
  readonly privateKey: string;
}

/** The name of the pair made at the first start, in the data directory. */
export const VAPID_FILE = 'vapid.json';

export function generateVapidKeys(): VapidKeys {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  return keysOf(ecdh);
}

/**
 * The pair of `ecdh` with the private scalar at its full 32 bytes: Node gives it without its leading
 * zero bytes (1 key in 256 has one), which web-push and the push services refuse as a wrong length.
 */
export function keysOf(ecdh: ECDH): VapidKeys {
  const scalar = Buffer.alloc(32);
  const raw = ecdh.getPrivateKey();
  raw.copy(scalar, 32 - raw.length);
  return { publicKey: ecdh.getPublicKey('base64url', 'uncompressed'), privateKey: scalar.toString('base64url') };
}

/** The file's text: snake case like the rest of chatd's JSON, with a line that says what it is. */
export function vapidFileText(keys: VapidKeys): string {
  const file = { about: 'chatd VAPID keys for Web Push (docs/push.md); keep private, back up with the data directory', public_key: keys.publicKey, private_key: keys.privateKey };
  return `${JSON.stringify(file, null, 2)}\n`;
}

/**
 * Writes `keys` to `path` as 0600, only if no file is there (unless `overwrite`): the text goes to
 * a temporary file that is then linked into place, which fails when `path`
 * exists, so a pair is never overwritten nor seen half written. Returns false
 * when `path` existed (and was left as it was).
 */
export function writeVapidFile(path: string, keys: VapidKeys, options: { overwrite?: boolean } = {}): boolean {
  const temporary = `${path}.${process.pid}.${Date.now()}.tmp`;
  const fd = openSync(temporary, 'wx', PRIVATE_FILE_MODE);
  try {
    writeSync(fd, vapidFileText(keys));
  } finally {
    closeSync(fd);
  }
  try {
    // The mode given to open is masked by the umask.
    chmodSync(temporary, PRIVATE_FILE_MODE);
    // Overwriting replaces the file in one step (rename); otherwise link, which refuses an existing file.
    if (options.overwrite === true) renameSync(temporary, path);
    else linkSync(temporary, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    rmSync(temporary, { force: true });
  }
}

/**
 * Reads a pair and checks that it is one: both keys the right length, and the
 * public key the private key's (a pair put together by hand from two
 * different ones would sign requests the push services refuse).
 */
export function readVapidFile(path: string, key: string): VapidKeys {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new StartupError(`${key}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new StartupError(`${key}: ${path} is not JSON; make a key pair with \`chatd push vapid --out ${path}\``);
  }
  // Also the camel case that `web-push generate-vapid-keys --json` prints.
  const publicKey = parsed.public_key ?? parsed.publicKey;
  const privateKey = parsed.private_key ?? parsed.privateKey;
  if (typeof publicKey !== 'string' || typeof privateKey !== 'string') {
    throw new StartupError(`${key}: ${path} has no "public_key" and "private_key"; make a key pair with \`chatd push vapid --out FILE\``);
  }
  const ecdh = createECDH('prime256v1');
  try {
    const scalar = Buffer.from(privateKey, 'base64url');
    // Shorter is a scalar written without its leading zero bytes, as Node's getPrivateKey gives it.
    if (scalar.length === 0 || scalar.length > 32) throw new Error(`the private key is ${scalar.length} bytes, not 32`);
    ecdh.setPrivateKey(Buffer.concat([Buffer.alloc(32 - scalar.length), scalar]));
  } catch (error) {
    throw new StartupError(`${key}: the private_key in ${path} is not a P-256 private key: ${(error as Error).message}`);
  }
  if (ecdh.getPublicKey('base64url', 'uncompressed') !== publicKey.replace(/=+$/, '')) {
    throw new StartupError(`${key}: the public_key in ${path} is not the private_key's; make a new pair with \`chatd push vapid\` (browsers then subscribe again)`);
  }
  return keysOf(ecdh);
}

/**
 * The server's pair: `vapidFile` when set (it must exist: an operator who
 * named a file wants that pair, not a new one), else `<dataDir>/vapid.json`,
 * made at the first start and kept. `made` says a pair was just made.
 */
export function loadVapidKeys(vapidFile: string, dataDir: string): { keys: VapidKeys; path: string; made: boolean } {
  if (vapidFile !== '') return { keys: readVapidFile(vapidFile, 'webpush.vapid_file'), path: vapidFile, made: false };
  const path = join(dataDir, VAPID_FILE);
  if (existsSync(path)) return { keys: readVapidFile(path, 'webpush'), path, made: false };
  createDataDirectory(dataDir);
  const keys = generateVapidKeys();
  // Another process made one first: that one is the pair.
  if (!writeVapidFile(path, keys)) return { keys: readVapidFile(path, 'webpush'), path, made: false };
  return { keys, path, made: true };
}

/** The data directory, 0700, when this runs before the storage made it (the first start). */
export function createDataDirectory(dir: string): void {
  if (existsSync(dir)) return;
  mkdirSync(dirname(dir), { recursive: true });
  try {
    mkdirSync(dir, { mode: PRIVATE_DIRECTORY_MODE });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return;
  }
  // The mode given to mkdir is masked by the umask.
  chmodSync(dir, PRIVATE_DIRECTORY_MODE);
}
