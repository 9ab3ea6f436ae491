import type { MessageJson } from '../protocol/frames.js';
import { readSealedAttachments } from './attachment-types.js';
import type { DeviceDirectory, Signer } from './device-directory.js';
import { decode } from './e2e-bytes.js';
import type { ClientMessage, E2eStatus } from './e2e-types.js';
import { type Envelope, decryptEnvelope, readEnvelope, signatureValid, unsealKey } from './envelope.js';
import type { HistoryKeys } from './history-hook.js';
import type { OwnDevice } from './own-device.js';
import type { ReplayGuard } from './replay-guard.js';
import { readSealedEdit } from './sealed-edit.js';
import type { Sodium } from './sodium.js';
import type { ThreadEncryptionPolicy } from './thread-encryption.js';

/**
 * Turns a received e2e message into what the app gets (docs/client.md,
 * statuses), in this order: the envelope's shape; the signer, as pinned, and
 * the owner it was pinned under (not the server's word for this message:
 * review H1); the signature; the owner's approval (`untrusted_sender`); the
 * message key, sealed to this device or shared by another own device; the
 * key commitment, before decrypting (review M1); replays (review L1).
 */
export class MessageOpener {
  constructor(
    private readonly sodium: Sodium,
    private readonly own: OwnDevice,
    private readonly directory: DeviceDirectory,
    private readonly historyKeys: HistoryKeys,
    private readonly replays: ReplayGuard,
    private readonly policy: ThreadEncryptionPolicy,
  ) {}

  /**
   * Whether the sending device is known here and trusted (else its owner's keys are fetched first): a device
   * learned from a `keys_changed` before its owner's account key was seen is not yet judged, and would
   * otherwise read `untrusted_sender` until some other fetch brought the account key.
   */
  knowsSender(message: MessageJson): boolean {
    const envelope = readEnvelope(message.body);
    return !envelope || this.signer(envelope.sender_device)?.trusted === true;
  }

  /**
   * `editOf`: the message is an e2e edit (a change message) of the message with this client_msg_id: its envelope is
   * bound to that one (sealed-edit.ts), and what it seals must name this change message's own client_msg_id.
   */
  open(message: MessageJson, editOf?: { readonly client_msg_id: string }): ClientMessage {
    const envelope = readEnvelope(message.body);
    const result = (status: E2eStatus, fingerprint?: string, body?: unknown, via?: 'sealed' | 'history'): ClientMessage => ({
      ...withoutAttachments(message),
      // The device the envelope names and its signature was checked against, not the server's unsigned label.
      ...(envelope ? { sender_device_id: envelope.sender_device } : {}),
      // Opened: the files are the ones the sender sealed (with their keys); the server's id list says nothing more.
      ...(status === 'ok' ? sealedParts(body) : { body: message.body, ...serverAttachments(message) }),
      // Protocol 1 history: no key commitment, so a sender (with a colluding server) could show recipients different bodies.
      e2e: { status, fingerprint, ...(via ? { via } : {}), ...(envelope?.v === 1 ? { legacy: true as const } : {}) },
    });
    if (!envelope) return result('bad_signature');
    const signer = this.signer(envelope.sender_device);
    if (!signer) return result('unknown_sender');
    const binding = { thread_id: message.thread_id, client_msg_id: editOf?.client_msg_id ?? message.client_msg_id, sender_user_id: message.sender_id };
    if (signer.user_id !== message.sender_id || !signatureValid(this.sodium, envelope, binding, signer.signKey)) return result('bad_signature', signer.fingerprint);
    if (!signer.trusted) return result('untrusted_sender', signer.fingerprint);
    const opened = this.messageKey(message, envelope);
    if (!opened) return result('undecryptable', signer.fingerprint);
    const decrypted = decryptEnvelope(this.sodium, envelope, binding, opened.key);
    if (decrypted === 'bad_commit') return result('bad_signature', signer.fingerprint);
    if (decrypted === 'undecryptable') return result('undecryptable', signer.fingerprint);
    // An edit sealed for another change message (the server replaying an older edit as a new one) is refused.
    if (editOf && readSealedEdit(decrypted.body)?.edit !== message.client_msg_id) return result('bad_signature', signer.fingerprint);
    // An edit's replay key is its own change message's client_msg_id (its binding's is the edited message's, seen already).
    if (this.replays.isReplay(message.thread_id, envelope.sender_device, message.client_msg_id, message.seq)) return result('replayed', signer.fingerprint);
    this.policy.encrypted(message.thread_id);
    return result('ok', signer.fingerprint, decrypted.body, opened.via);
  }

  /** K (base64) of a message that opens `ok` here; undefined otherwise (the history hook's `messageKey`). */
  keyOf(message: MessageJson): string | undefined {
    const envelope = readEnvelope(message.body);
    if (!envelope || this.open(message).e2e?.status !== 'ok') return undefined;
    const opened = this.messageKey(message, envelope);
    return opened ? this.sodium.to_base64(opened.key, this.sodium.base64_variants.ORIGINAL) : undefined;
  }

  /** This device from its own keys; any other from the directory. */
  private signer(deviceId: number): Signer | undefined {
    if (deviceId === this.own.deviceId) return { user_id: this.own.user, signKey: this.own.signKey(), fingerprint: this.own.fingerprint(), trusted: true };
    return this.directory.signer(deviceId);
  }

  /** K of a message: sealed to this device (current or earlier key), or shared by another own device (history keys). */
  private messageKey(message: MessageJson, envelope: Envelope): { key: Uint8Array; via: 'sealed' | 'history' } | undefined {
    const sealed = unsealKey(this.sodium, envelope, this.own.deviceId as number, this.own.pairs());
    if (sealed) return { key: sealed, via: 'sealed' };
    const shared = this.historyKeys.get(message.thread_id, message.seq);
    return shared ? { key: decode(this.sodium, shared), via: 'history' } : undefined;
  }
}

/** The app's body and the files of a decrypted body (docs/attachments.md, "Encrypted attachments"). */
function sealedParts(plain: unknown): Pick<ClientMessage, 'body' | 'attachments'> {
  // An edited message shows its latest edit's envelope: the body and the files are inside the edit.
  const sealed = readSealedEdit(plain) ?? readSealedAttachments(plain);
  if (!sealed) return { body: plain };
  return { body: sealed.body, ...(sealed.attachments.length > 0 ? { attachments: sealed.attachments } : {}) };
}

function withoutAttachments(message: MessageJson): Omit<MessageJson, 'attachments'> {
  const { attachments: _attachments, ...rest } = message;
  return rest;
}

/** The ids the server lists, for a message that could not be opened. */
function serverAttachments(message: MessageJson): Pick<ClientMessage, 'attachments'> {
  return message.attachments ? { attachments: message.attachments } : {};
}
