import { type ClientAttachment, type EncryptedFileInfo, readSealedAttachments, sealedWithAttachments } from './attachment-types.js';

/**
 * What an edit in an end-to-end encrypted thread seals (docs/client.md, "Edits
 * in encrypted threads"): the new body, the edited message's encrypted files
 * (an edit does not change attachments, but the server shows the edit's
 * envelope as the message's body from then on, so their keys must travel in
 * it), and the edit's own client_msg_id. The envelope is bound to the edited
 * message's client_msg_id, so it opens as that message in history; the
 * client_msg_id inside ties it to its own change message, so the server cannot
 * present one edit as another.
 */
export const EDIT_MARKER = 'chatd-edit-v1';

export interface SealedEdit {
  readonly chatd: typeof EDIT_MARKER;
  /** The change message's client_msg_id. */
  readonly edit: string;
  readonly body: unknown;
  readonly attachments?: readonly EncryptedFileInfo[];
}

export function sealedEdit(editClientMsgId: string, body: unknown, files: readonly EncryptedFileInfo[]): SealedEdit {
  return { chatd: EDIT_MARKER, edit: editClientMsgId, body, ...(files.length > 0 ? { attachments: files } : {}) };
}

/** A decrypted edit: its body and files, and the change message it was made for; undefined for anything else. */
export function readSealedEdit(plain: unknown): { edit: string; body: unknown; attachments: ClientAttachment[] } | undefined {
  if (typeof plain !== 'object' || plain === null) return undefined;
  const sealed = plain as Partial<Record<keyof SealedEdit, unknown>>;
  if (sealed.chatd !== EDIT_MARKER || typeof sealed.edit !== 'string') return undefined;
  const files = Array.isArray(sealed.attachments) ? sealed.attachments : [];
  // The attachments are read (and checked) the way a message's are.
  const parts = readSealedAttachments(sealedWithAttachments(sealed.body, files as EncryptedFileInfo[]));
  return { edit: sealed.edit, body: parts?.body ?? null, attachments: parts?.attachments ?? [] };
}
