import { decode, encode, fromUtf8, signedArray, utf8Bytes, verifies } from './e2e-bytes.js';
import type { EncPair } from './envelope.js';
import type { Sodium } from './sodium.js';

/**
 * Device messages (the shared spec, section 3): what one device of a user
 * sends another of the same user through the server, which sees only a
 * sealed box. Signed inside the box by the sending device, bound to both
 * device ids, the user and the kind, so the server can neither read, forge,
 * redirect nor relabel one.
 */

/** `account_key`: the account key pair for a newly approved device; `history`: message keys (the history module). */
export type DeviceMessageKind = 'account_key' | 'history';

export interface DeviceMessage {
  readonly from_device: number;
  readonly kind: DeviceMessageKind;
  readonly body: unknown;
}

const DOMAIN = 'chatd-device-msg-v2';

function signedBytes(userId: number, from: number, to: number, kind: string, body: unknown): Uint8Array {
  return signedArray(DOMAIN, userId, from, to, kind, JSON.stringify(body));
}

/** The base64 payload of a `device_send` to device `to` (its encryption key `toEncKey`). */
export function sealDeviceMessage(
  sodium: Sodium,
  sender: { readonly user_id: number; readonly device_id: number; readonly signSecret: Uint8Array },
  to: { readonly device_id: number; readonly encKey: Uint8Array },
  kind: DeviceMessageKind,
  body: unknown,
): string {
  const signature = encode(sodium, sodium.crypto_sign_detached(signedBytes(sender.user_id, sender.device_id, to.device_id, kind, body), sender.signSecret));
  const inner = { v: 2, from_device: sender.device_id, to_device: to.device_id, kind, body, signature };
  return encode(sodium, sodium.crypto_box_seal(utf8Bytes(JSON.stringify(inner)), to.encKey));
}

/**
 * Opens a payload sent to this device. `signKeyOf` gives the signing key of
 * the named sending device when this device accepts messages from it (an
 * approved device of its own user); undefined refuses it. Throws with the
 * reason for anything that is not a well-formed, signed message for this device
 * from the device the server says sent it.
 */
export function openDeviceMessage(
  sodium: Sodium,
  receiver: { readonly user_id: number; readonly device_id: number; readonly pairs: readonly EncPair[] },
  delivered: { readonly from_device: number; readonly payload: string },
  signKeyOf: (deviceId: number) => Uint8Array | undefined,
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
  const inner = JSON.parse(fromUtf8(plain)) as { v?: unknown; from_device?: unknown; to_device?: unknown; kind?: unknown; body?: unknown; signature?: unknown };
  if (inner.v !== 2 || inner.to_device !== receiver.device_id || inner.from_device !== delivered.from_device) throw new Error('addressed to another device, or from another than the server says');
  if (inner.kind !== 'account_key' && inner.kind !== 'history') throw new Error(`unknown kind ${JSON.stringify(inner.kind)}`);
  const signKey = signKeyOf(delivered.from_device);
  if (!signKey) throw new Error(`device ${delivered.from_device} is not an approved device of this account`);
  const bytes = signedBytes(receiver.user_id, delivered.from_device, receiver.device_id, inner.kind, inner.body);
  if (!verifies(sodium, typeof inner.signature === 'string' ? inner.signature : undefined, bytes, signKey)) throw new Error('bad signature');
  return { from_device: delivered.from_device, kind: inner.kind, body: inner.body };
}
