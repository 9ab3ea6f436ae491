import type { MessageJson } from '../protocol/frames.js';
import type { ClientAttachment } from './attachment-types.js';

/**
 * What the app sees of end-to-end encryption (docs/client.md, "End-to-end
 * encryption"): message statuses, events and the shapes the methods return.
 */

/**
 * What became of an encrypted message:
 * - `ok`: decrypted, signed by the device it names, which its owner's pinned account key approved;
 * - `undecryptable`: no key for this device (added after the message was sent, or damaged);
 * - `bad_signature`: not signed by the device it names, a key commitment that does not match, or a
 *   device the server attributes to another user than the one it was pinned under: forged or altered;
 * - `unknown_sender`: the sending device's keys could not be had;
 * - `untrusted_sender`: validly signed by a device its owner's pinned account key has not approved;
 * - `replayed`: the same (thread, sender device, client_msg_id) was already seen at another seq.
 */
export type E2eStatus = 'ok' | 'undecryptable' | 'bad_signature' | 'unknown_sender' | 'untrusted_sender' | 'replayed';

/** A message as the app gets it: an encrypted one decrypted, with what became of it. */
export type ClientMessage = Omit<MessageJson, 'attachments'> & {
  /**
   * The message's files. Plaintext: the server's descriptions. Encrypted (status `ok`): the sender's, from inside
   * the envelope, each with `encrypted` (its key and hash) for `download`; ids the server lists that the envelope
   * does not are dropped. Absent when there are none.
   */
  readonly attachments?: readonly ClientAttachment[];
  // For an e2e message whose envelope could be read, `sender_device_id` is the envelope's `sender_device` (the
  // device the signature is checked against and `fingerprint` names), not the server's label.
  /** Set for end-to-end encrypted messages; `body` is the decrypted body when `status` is `ok`, the envelope otherwise. */
  readonly e2e?: {
    readonly status: E2eStatus;
    /** The sending device's fingerprint, when its keys are known. */
    readonly fingerprint: string | undefined;
    /** For `ok`: how this device got the message key: sealed to it in the envelope, or shared later by another own device. */
    readonly via?: 'sealed' | 'history';
    /**
     * A protocol 1 envelope (older history): it has no key commitment, so its
     * sender, with the server's help, could have shown other members another
     * body for the same message. Absent for protocol 2.
     */
    readonly legacy?: true;
  };
};

/**
 * A device's keys appeared or changed. `new`: first seen approved by its
 * owner's account key; `rotated`: a new encryption key (higher counter) under
 * the same identity; `changed`: the server reports another identity (signing)
 * key or an older counter for a device seen before: refused (the pinned keys
 * stay, nothing is sealed to what the server reports, `trusted` is false);
 * `removed`: the device was revoked. (A report moving a device's own keys to
 * another user fails their self-signature: an `error` event `bad_reply`, no
 * `keys` event.)
 */
export interface KeyChange {
  readonly user_id: number;
  readonly device_id: number;
  readonly reason: 'new' | 'rotated' | 'changed' | 'removed';
  readonly fingerprint: string;
  /** The pinned fingerprint before (`changed`, `rotated`, `removed`). */
  readonly previous_fingerprint: string | undefined;
  /** Signed by the owner's pinned account key (and, for `changed`, what the server reports was accepted: never). */
  readonly trusted: boolean;
}

/**
 * A contact's account key (their identity) was first seen (`new`) or changed
 * (`changed`). `held`: sends to threads with them wait until
 * `acceptIdentity(user_id)` (a contact the user had verified).
 */
export interface IdentityChange {
  readonly user_id: number;
  readonly reason: 'new' | 'changed';
  readonly safety_number: string;
  readonly verified: boolean;
  readonly held: boolean;
}

/** A device of this user that the account key has not approved: "a new device wants to join your account". */
export interface DeviceRequest {
  readonly device_id: number;
  readonly fingerprint: string;
}

/** This device's standing: `created` (it made the account key), `approved` (it holds it), `pending` (waiting for approval). */
export interface AccountStanding {
  readonly state: 'approved' | 'pending' | 'created';
}

/** One device of this user, as `devices()` lists them. */
export interface OwnDevice {
  readonly device_id: number;
  readonly fingerprint: string;
  readonly state: 'this' | 'approved' | 'pending' | 'revoked';
}

/** A device of a user as this client has pinned it (`fingerprints()`). */
export interface DeviceFingerprint {
  readonly user_id: number;
  readonly device_id: number;
  readonly fingerprint: string;
  /** Approved by the owner's pinned account key. */
  readonly trusted: boolean;
  readonly revoked: boolean;
  /** The server currently reports other keys for it than the pinned ones. */
  readonly mismatch: boolean;
}

/** The number two people compare (or the QR code one scans) to know their account keys are each other's. */
export interface SafetyNumber {
  /** 60 digits in 12 groups of 5. */
  readonly number: string;
  /** `chatd-verify:1:<uid_a>:<acct_a>:<uid_b>:<acct_b>`, ids ascending. */
  readonly qr: string;
  readonly verified: boolean;
}
