import { decode, decodeSized, encode, fromUtf8, signedArray, utf8Bytes, verifies } from './e2e-bytes.js';
import type { EncPair } from './envelope.js';
import type { Sodium } from './sodium.js';

/**
 * Device messages (the shared spec, section 3): what one device of a user
 * sends another of the same user through the server, which sees only a
 * sealed box. Signed inside the box by the sending device, bound to both
 * device ids, the user, the kind, a random message id and the time it was
 * made, so the server can neither read, forge, redirect nor relabel one, and
 * a replay of one is recognised (device-message-log.ts).
 */

/** `account_key`: the account key pair for a newly approved device; `history`: message keys (the history module). */
export type DeviceMessageKind = 'account_key' | 'history';

export interface DeviceMessage {
  readonly from_device: number;
  readonly kind: DeviceMessageKind;
  readonly body: unknown;
  /** 16 random bytes (base64) the sender chose: the same id again is a replay. */
  readonly msg_id: string;
  /** When the sender made it (ms since the epoch, the sender's clock). */
  readonly sent_at: number;
}

/**
 * The sender is not (yet) a device this one takes messages from: it may be
 * approved in a keys_changed still on its way, so the message stays queued
 * rather than be refused for good.
 */
export class UntrustedSender extends Error {}

const DOMAIN = 'chatd-device-msg-v2';
const MSG_ID_BYTES = 16;

function signedBytes(userId: number, from: number, to: number, kind: string, msgId: string, sentAt: number, body: unknown): Uint8Array {
  return signedArray(DOMAIN, userId, from, to, kind, msgId, sentAt, JSON.stringify(body));
}

/** The base64 payload of a `device_send` to device `to` (its encryption key `toEncKey`). */
export function sealDeviceMessage(
  sodium: Sodium,
  sender: { readonly user_id: number; readonly device_id: number; readonly signSecret: Uint8Array },
  to: { readonly device_id: number; readonly encKey: Uint8Array },
  kind: DeviceMessageKind,
  body: unknown,
  now = Date.now(),
): string {
  const msgId = encode(sodium, sodium.randombytes_buf(MSG_ID_BYTES));
  const signature = encode(sodium, sodium.crypto_sign_detached(signedBytes(sender.user_id, sender.device_id, to.device_id, kind, msgId, now, body), sender.signSecret));
  const inner = { v: 2, from_device: sender.device_id, to_device: to.device_id, kind, msg_id: msgId, sent_at: now, body, signature };
  return encode(sodium, sodium.crypto_box_seal(utf8Bytes(JSON.stringify(inner)), to.encKey));
}

/**
 * Opens a payload sent to this device. `signKeyOf` gives the signing key of
 * the named sending device when this device accepts messages of that kind
 * from it (an approved device of its own user; for `account_key`, one the
 * account key certified even if revoked since); undefined: UntrustedSender.
 * Throws with the reason for anything that is not a well-formed, signed
 * message for this device from the device the server says sent it.
 */
export function openDeviceMessage(
  sodium: Sodium,
  receiver: { readonly user_id: number; readonly device_id: number; readonly pairs: readonly EncPair[] },
  delivered: { readonly from_device: number; readonly payload: string },
  signKeyOf: (deviceId: number, kind: DeviceMessageKind) => Uint8Array | undefined,
): DeviceMessage {
  let plain: Uint8Array | undefined;
  const sealed = decode(sodium, delivered.payload);
  for (const pair of receiver.pairs) {
    try {
      plain = sodium.crypto_box_seal_open(sealed, pair.public, pair.secret);
      break;
    } catch {
      // Sealed to another (older) key of this device, or to none.
    }
  }
  if (!plain) throw new Error('not sealed to this device');
  const inner = JSON.parse(fromUtf8(plain)) as { v?: unknown; from_device?: unknown; to_device?: unknown; kind?: unknown; msg_id?: unknown; sent_at?: unknown; body?: unknown; signature?: unknown };
  if (inner.v !== 2 || inner.to_device !== receiver.device_id || inner.from_device !== delivered.from_device) throw new Error('addressed to another device, or from another than the server says');
  if (inner.kind !== 'account_key' && inner.kind !== 'history') throw new Error(`unknown kind ${JSON.stringify(inner.kind)}`);
  const msgId = inner.msg_id;
  const sentAt = inner.sent_at;
  if (typeof msgId !== 'string' || !decodeSized(sodium, msgId, MSG_ID_BYTES) || typeof sentAt !== 'number' || !Number.isSafeInteger(sentAt) || sentAt < 0) {
    throw new Error('msg_id (16 bytes) or sent_at (ms) missing or malformed: a message of an older version');
  }
  const signKey = signKeyOf(delivered.from_device, inner.kind);
  if (!signKey) throw new UntrustedSender(`device ${delivered.from_device} is not an approved device of this account (yet)`);
  const bytes = signedBytes(receiver.user_id, delivered.from_device, receiver.device_id, inner.kind, msgId, sentAt, inner.body);
  if (!verifies(sodium, typeof inner.signature === 'string' ? inner.signature : undefined, bytes, signKey)) throw new Error('bad signature');
  return { from_device: delivered.from_device, kind: inner.kind, body: inner.body, msg_id: msgId, sent_at: sentAt };
}
