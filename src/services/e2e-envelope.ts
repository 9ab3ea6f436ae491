import { canonicalLength } from '../crypto/keys.js';
import { ChatError } from '../errors.js';

/**
 * The body of an end-to-end encrypted message, as the server sees it:
 *
 *   { "v": 2, "sender_device": 12, "nonce": b64, "commit": b64, "ciphertext": b64,
 *     "keys": { "<device id>": b64, ... }, "signature": b64 }
 *
 * `ciphertext` is the message (XChaCha20-Poly1305 under a key derived from a
 * fresh one), `commit` a hash that binds the envelope to that key (so that
 * one envelope cannot open as two messages), `keys` the fresh key sealed to
 * each device (crypto_box_seal), `signature` the sender device's Ed25519
 * signature over all of it (docs/protocol.md, "The e2e body"). The server reads only the
 * structure and the device ids, never a byte of the content; fields it does not
 * know are refused, so that nothing readable rides along by mistake.
 */
export interface EnvelopeShape {
  readonly senderDevice: number;
  readonly deviceIds: readonly number[];
}

const FIELDS = new Set(['v', 'sender_device', 'nonce', 'commit', 'ciphertext', 'keys', 'signature']);
/** crypto_box_seal of a 32-byte key: the key, an ephemeral public key (32) and a MAC (16). */
const SEALED_KEY_BYTES = 80;
const NONCE_BYTES = 24;
const COMMIT_BYTES = 32;
const SIGNATURE_BYTES = 64;
/** XChaCha20-Poly1305's tag: no ciphertext is shorter. */
const MIN_CIPHERTEXT_BYTES = 16;

export function readEnvelope(bodyJson: string): EnvelopeShape {
  let body: unknown;
  try {
    body = JSON.parse(bodyJson);
  } catch {
    throw bad('the body is not JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('the body of an e2e message is an object');
  const envelope = body as Record<string, unknown>;
  // The version first: a protocol-1 client learns what to do, not which field it lacks.
  if (envelope.v !== 2) throw bad('v must be 2 (this server speaks protocol 2: update the client)');
  const unknown = Object.keys(envelope).filter((key) => !FIELDS.has(key));
  if (unknown.length > 0) throw bad(`an e2e body holds only ${[...FIELDS].join(', ')}; not ${unknown.join(', ')}`);
  const senderDevice = envelope.sender_device;
  if (typeof senderDevice !== 'number' || !Number.isSafeInteger(senderDevice) || senderDevice < 1) throw bad('sender_device must be a device id');
  base64Field(envelope, 'nonce', NONCE_BYTES);
  base64Field(envelope, 'commit', COMMIT_BYTES);
  base64Field(envelope, 'ciphertext', undefined);
  base64Field(envelope, 'signature', SIGNATURE_BYTES);
  const keys = envelope.keys;
  if (typeof keys !== 'object' || keys === null || Array.isArray(keys)) throw bad('keys must map device ids to sealed keys');
  const deviceIds: number[] = [];
  for (const [id, sealed] of Object.entries(keys as Record<string, unknown>)) {
    if (!/^[1-9][0-9]{0,15}$/.test(id)) throw bad(`keys: "${id}" is not a device id`);
    if (typeof sealed !== 'string' || canonicalLength(sealed) !== SEALED_KEY_BYTES) {
      throw bad(`keys.${id} must be a sealed key: ${SEALED_KEY_BYTES} bytes in standard, padded base64`);
    }
    deviceIds.push(Number(id));
  }
  if (deviceIds.length === 0) throw bad('keys must hold a sealed key for every device of the thread');
  return { senderDevice, deviceIds: deviceIds.sort((a, b) => a - b) };
}

/**
 * Canonical base64 only (standard alphabet, padded, zero trailing bits): every
 * implementation then reads the same bytes from the same text, so no two
 * clients can see two different envelopes in one stored body.
 */
function base64Field(envelope: Record<string, unknown>, name: string, bytes: number | undefined): void {
  const value = envelope[name];
  const length = typeof value === 'string' ? canonicalLength(value) : undefined;
  if (length === undefined) throw bad(`${name} must be standard, padded base64`);
  if (bytes !== undefined && length !== bytes) throw bad(`${name} must be ${bytes} bytes`);
  if (bytes === undefined && length < MIN_CIPHERTEXT_BYTES) throw bad(`${name} must be at least ${MIN_CIPHERTEXT_BYTES} bytes`);
}

function bad(message: string): ChatError {
  return new ChatError('invalid_field', message, { field: 'body' });
}
