import { ChatError } from '../errors.js';
import type { AttachmentStorage, UploadRow } from '../storage/ports/attachments.js';

/**
 * What a send's attachment ids become (docs/attachments.md, "Messages"): the
 * JSON the message stores and every reader gets, and the uploads it
 * references. Pure but for the one read of the uploads the sender may attach.
 */

/** The wire shape of one attachment (protocol AttachmentJson), built here so the services import no protocol. */
export interface AttachmentFields {
  readonly id: string;
  readonly name?: string;
  readonly size?: number;
  readonly mime?: string;
  readonly sha256?: string;
  readonly width?: number;
  readonly height?: number;
  readonly duration?: number;
  readonly thumbnail?: { readonly width: number; readonly height: number };
}

export interface MessageAttachments {
  /** Stored in messages.attachments as it is, and spliced into every frame that carries the message. */
  readonly json: string;
  readonly uploadIds: readonly string[];
}

/**
 * Checks that every id is an upload the sender may attach (their own complete
 * one, or one they can read: forwarding) and describes them. A plaintext
 * message carries the server's own description of each file (size, type and
 * hash of the bytes it serves, never what the client claimed); an end-to-end
 * one carries the ids only: the rest is inside the envelope, the server knows
 * nothing else. Throws attachment_not_found naming the first id that is not attachable, and
 * attachment_mismatch for an encrypted upload in a plaintext message or the reverse.
 */
export async function resolveAttachments(
  storage: Pick<AttachmentStorage, 'attachable'>,
  userId: number,
  ids: readonly string[],
  kind: 'text' | 'e2e',
): Promise<MessageAttachments> {
  const found = await storage.attachable(userId, ids);
  const described = ids.map((id) => {
    const row = found.get(id);
    // Not ours, not readable, incomplete or made up: one answer (ids are not confirmed).
    if (!row?.blob) {
      throw new ChatError('attachment_not_found', `attachment ${id} is not an upload you may attach: finish uploading it first, or attach one you can read`, {
        field: 'attachments',
      });
    }
    // Ciphertext in a plaintext message would carry any type past attachments.allowed_types (nothing
    // sniffed it), and a plaintext file in an end-to-end message would be readable by the server:
    // each kind of message takes its kind of upload only.
    if (row.encrypted !== (kind === 'e2e')) {
      throw new ChatError(
        'attachment_mismatch',
        kind === 'e2e'
          ? `attachment ${id} was uploaded in plaintext: an end-to-end message carries only uploads marked encrypted`
          : `attachment ${id} was uploaded encrypted: send it in an end-to-end message (kind "e2e")`,
        { field: 'attachments' },
      );
    }
    return kind === 'e2e' ? { id } : attachmentFields(row);
  });
  return { json: JSON.stringify(described), uploadIds: ids };
}

/** An upload as a plaintext message describes it, from the server's record (absent fields: unknown). */
export function attachmentFields(row: UploadRow): AttachmentFields {
  const blob = row.blob;
  if (!blob) throw new Error(`upload ${row.id} is not complete`);
  return {
    id: row.id,
    name: row.name,
    size: blob.size,
    mime: blob.mime,
    sha256: blob.sha256,
    ...(blob.width === null ? {} : { width: blob.width }),
    ...(blob.height === null ? {} : { height: blob.height }),
    ...(row.durationMs === null ? {} : { duration: row.durationMs }),
    ...(blob.thumbnail === null ? {} : { thumbnail: { width: blob.thumbnail.width, height: blob.thumbnail.height } }),
  };
}
